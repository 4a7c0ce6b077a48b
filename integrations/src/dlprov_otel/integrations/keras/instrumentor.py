"""``KerasInstrumentor``: the OpenTelemetry instrumentor of Keras 3 (also as ``tf.keras``)."""

from __future__ import annotations

import atexit
from collections.abc import Collection

from dlprov_otel.signals import register_at_stop, unregister_at_stop

from .._shared.context import Settings
from .._shared.guard import guarded
from .._shared.instrumentor import DLProvInstrumentor
from .._shared.silence import expect_training, stop_expecting
from .loops import FRAMEWORK, LoopRecorder, active
from .patches import patch
from .runs import DEFAULT_DATAFLOW, state
from .tfpatches import patch_loops

HINT = (
    "from dlprov_otel.integrations.keras import DLProvCallback; model.fit(..., callbacks=[DLProvCallback()]), "
    "or dlprov_otel.execution(...) with task(...).output('otrainmodel', ...) in a custom loop"
)

_instruments = ("keras >= 3.0",)


class KerasInstrumentor(DLProvInstrumentor):
    """OpenTelemetry instrumentor recording Keras training as DLProv provenance.

    ``instrument(tracer_provider=None, dataflow=None, execution=None, store=None)``:
    ``tracer_provider`` receives the spans (default: the pipeline of
    ``dlprov_otel.configure()``); ``dataflow`` is the dataflow tag (default
    ``DLPROV_DATAFLOW``, else ``keras``), ``execution`` the execution tag (default: one per
    process); an open ``dlprov_otel.execution(...)`` wins over both. ``store`` is a store
    path or URL to configure now (default: the environment, on first use). Keras is patched
    when it is imported, never imported by this call.
    """

    name = "keras"
    default_dataflow = DEFAULT_DATAFLOW

    def instrumentation_dependencies(self) -> Collection[str]:
        return _instruments

    def _start(self, settings: Settings) -> None:
        state.settings = settings
        active.recorder = LoopRecorder()
        self.patcher.when_imported("keras", self._patch)
        expect_training(FRAMEWORK, modules=("tensorflow", "keras"), hint=HINT)
        atexit.register(finish_loops)
        register_at_stop(finish_loops)  # SIGTERM/SIGHUP skip atexit

    def _patch(self) -> None:
        patch(self.patcher)
        patch_loops(self.patcher)

    def _stop(self) -> None:
        finish_loops()
        atexit.unregister(finish_loops)
        unregister_at_stop(finish_loops)
        stop_expecting(FRAMEWORK)
        active.recorder = None
        state.settings = None


def finish_loops() -> None:
    """End a custom loop's training (at exit, or when uninstrumented)."""
    rec = active.recorder
    if rec is not None:
        guarded("tensorflow finish", rec.finish)


__all__ = ["KerasInstrumentor"]
