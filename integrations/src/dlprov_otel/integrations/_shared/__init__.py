"""The layer every integration stands on: one error guard, one patching helper, one
resolver of the current dataflow and execution, and the base instrumentor."""

from .context import DATAFLOW_ENV, Settings, resolve
from .guard import STRICT_ENV, forget_reported, guarded, is_strict, report, strict
from .instrumentor import DLProvInstrumentor
from .patching import Patcher
from .rows import clean_metrics, timestamp

__all__ = [
    "DATAFLOW_ENV",
    "STRICT_ENV",
    "DLProvInstrumentor",
    "Patcher",
    "Settings",
    "clean_metrics",
    "forget_reported",
    "guarded",
    "is_strict",
    "report",
    "resolve",
    "strict",
    "timestamp",
]
