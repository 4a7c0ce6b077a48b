"""``TransformersInstrumentor``: the OpenTelemetry instrumentor of HuggingFace ``Trainer``."""

from __future__ import annotations

from collections.abc import Collection

from .._shared.context import Settings
from .._shared.instrumentor import DLProvInstrumentor
from .._shared.silence import expect_training, stop_expecting
from .patches import patch
from .recorder import DEFAULT_DATAFLOW, FRAMEWORK, state

HINT = (
    "from dlprov_otel.integrations.transformers import DLProvTrainerCallback; "
    "Trainer(..., callbacks=[DLProvTrainerCallback()])"
)


class TransformersInstrumentor(DLProvInstrumentor):
    """Zero-code provenance of ``transformers.Trainer`` runs (entry point ``dlprov_transformers``).

    ``instrument(tracer_provider=None, dataflow=None, execution=None, store=None)`` as the
    other integrations (default dataflow ``DLPROV_DATAFLOW``, else ``transformers``).
    ``transformers`` is patched when ``transformers.trainer`` is imported, never by this call.
    """

    name = "transformers"
    default_dataflow = DEFAULT_DATAFLOW

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("transformers >= 4.40",)

    def _start(self, settings: Settings) -> None:
        state.settings = settings
        self.patcher.when_imported("transformers.trainer", lambda: patch(self.patcher))
        expect_training(FRAMEWORK, modules=("transformers.trainer",), hint=HINT)

    def _stop(self) -> None:
        stop_expecting(FRAMEWORK)
        state.settings = None


__all__ = ["TransformersInstrumentor"]
