"""DLProv-OTel: provenance of deep-learning training as OpenTelemetry spans in MonetDB.

The DfAnalyzer API (``Dataflow``, ``Transformation``, ``Set``, ``Attribute``, ``Task``,
``DataSet``, ``Element``), a Pythonic API (``execution``, ``task``, ``step``) and the set-up
(``configure``).
"""

# One namespace, three distributions (as OpenTelemetry's contrib packages share
# ``opentelemetry.instrumentation``): this core, dlprov-otel-integrations
# (``dlprov_otel.integrations``) and dlprov-otel-collector (``dlprov_otel.collector``).
# Installed, they share one folder; from a checkout, extend_path finds their src/ folders.
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

from .api import Dataflow, DataSet, Element, Task
from .errors import (
    DLProvError,
    ElementError,
    QueryError,
    SpecError,
    StoreError,
    StoreLockedError,
    StoreURLError,
)
from .model import Attribute, AttributeType, Set, SetType, Transformation
from .pythonic import current_execution, dataflow, execution, step, task
from .tracing import Telemetry, configure, shutdown, telemetry

__version__ = "0.1.0"


def flush(timeout: float = 30.0) -> bool:
    """Export everything recorded so far (rows are then queryable)."""
    return telemetry().flush(timeout)


def stats() -> dict[str, int]:
    """Span counters: queued, exported, export_failures, spooled, dropped, ..."""
    return telemetry().stats()


def get_store(timeout: float = 30.0):
    """The store the in-process exporter writes to, with what this process recorded so far
    stored (it flushes first, for at most ``timeout`` s); ``None`` when exporting over OTLP."""
    tel = telemetry()
    if tel.pending_store is None:
        return None
    tel.flush(timeout)
    return tel.store


__all__ = [
    "Attribute",
    "AttributeType",
    "DLProvError",
    "DataSet",
    "Dataflow",
    "Element",
    "ElementError",
    "QueryError",
    "Set",
    "SetType",
    "SpecError",
    "StoreError",
    "StoreLockedError",
    "StoreURLError",
    "Task",
    "Telemetry",
    "Transformation",
    "configure",
    "current_execution",
    "dataflow",
    "execution",
    "flush",
    "get_store",
    "shutdown",
    "stats",
    "step",
    "task",
    "telemetry",
]
