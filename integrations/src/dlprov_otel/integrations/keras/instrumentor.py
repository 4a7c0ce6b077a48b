"""``KerasInstrumentor``: the OpenTelemetry instrumentor of Keras 3 (also as ``tf.keras``)."""

from __future__ import annotations

from collections.abc import Collection

from .._shared.context import Settings
from .._shared.instrumentor import DLProvInstrumentor
from .patches import patch
from .runs import DEFAULT_DATAFLOW, state

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
        self.patcher.when_imported("keras", lambda: patch(self.patcher))

    def _stop(self) -> None:
        state.settings = None


__all__ = ["KerasInstrumentor"]
