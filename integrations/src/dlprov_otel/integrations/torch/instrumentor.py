"""``TorchInstrumentor``: the OpenTelemetry instrumentor of PyTorch (and Lightning)."""

from __future__ import annotations

import atexit
from collections.abc import Collection
from typing import Any

from dlprov_otel.signals import register_at_stop, unregister_at_stop

from .._shared.context import Settings
from .._shared.guard import guarded
from .._shared.instrumentor import DLProvInstrumentor
from .._shared.silence import expect_training, stop_expecting
from .patches import finish_at_exit, patch_failures, patch_torch
from .recorder import DEFAULT_DATAFLOW, Recorder
from .state import active

HINT = (
    "from dlprov_otel.integrations.torch import log_epoch, log_test; "
    "log_epoch(epoch, loss=...) after each epoch, log_test(loss=..., accuracy=...) after testing"
)


class TorchInstrumentor(DLProvInstrumentor):
    """Zero-code provenance for PyTorch training (entry point ``dlprov_torch``).

    ``instrument(tracer_provider=None, dataflow=None, execution=None, store=None,
    lightning=True)``: ``tracer_provider`` receives the spans (default: the pipeline of
    ``dlprov_otel.configure()``); the dataflow (default ``DLPROV_DATAFLOW`` or ``torch``);
    the execution tag (``execution_tag`` is accepted too; default one per process, shared
    by the ranks of a job); an open ``dlprov_otel.execution(...)`` wins over both;
    ``store`` a store to configure now; and whether every ``lightning.pytorch.Trainer``
    gets a :class:`DLProvLightningCallback`.
    """

    name = "torch"
    default_dataflow = DEFAULT_DATAFLOW

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("torch >= 2.0",)

    def _start(self, settings: Settings) -> None:
        active.recorder = Recorder(settings.dataflow, settings.execution)
        expect_training("torch", ("torch",), HINT)
        # torch is patched when the script imports it (at once if it is imported already)
        self.patcher.when_imported("torch", lambda: patch_torch(self.patcher))
        if settings.options.get("lightning", True):
            self.patcher.when_imported("lightning.pytorch", self._patch_lightning)
        patch_failures(self.patcher)
        atexit.register(finish_at_exit)
        register_at_stop(finish_at_exit)  # SIGTERM/SIGHUP skip atexit

    def _patch_lightning(self) -> None:
        import lightning.pytorch as pl

        from ..lightning_callback import DLProvLightningCallback  # imports lightning

        def init(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
            callbacks = kwargs.get("callbacks")
            callbacks = [callbacks] if callbacks is not None and not isinstance(callbacks, list | tuple) else callbacks
            callbacks = list(callbacks or [])
            if not any(isinstance(c, DLProvLightningCallback) for c in callbacks):
                callbacks.append(DLProvLightningCallback())
            kwargs["callbacks"] = callbacks
            return wrapped(*args, **kwargs)

        self.patcher.wrap(pl.Trainer, "__init__", init)

    def _stop(self) -> None:
        rec = active.recorder
        if rec is not None:
            guarded("torch finish", rec.finish)
            rec.disarm_model_hooks()
            rec.watcher.stop()
        atexit.unregister(finish_at_exit)
        unregister_at_stop(finish_at_exit)
        stop_expecting("torch")
        active.recorder = None


__all__ = ["TorchInstrumentor"]
