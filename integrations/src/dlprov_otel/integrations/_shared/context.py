"""Where recorded tasks go: the one resolver of the current dataflow and execution.

The order, for every integration:

1. the execution opened with ``dlprov_otel.execution(...)`` (its dataflow too);
2. the arguments of the call (a callback's or a data step's ``dataflow``/``execution``);
3. the settings of the instrumentor instrumented last (``instrument(dataflow=..., execution=...)``);
4. ``DLPROV_DATAFLOW``, else the framework's default dataflow, and one execution per
   dataflow and process (shared by the ranks of a job).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dlprov_otel import tracing
from dlprov_otel.api import Dataflow
from dlprov_otel.pythonic import dataflow as lookup_or_create

DATAFLOW_ENV = "DLPROV_DATAFLOW"
_ALIASES = {"execution_tag": "execution"}  # earlier keyword of TorchInstrumentor


@dataclass(frozen=True)
class Settings:
    """The keywords every integration's ``instrument()`` takes.

    ``tracer_provider``: spans go to this ``TracerProvider`` (default: the pipeline of
    ``dlprov_otel.configure()``); ``dataflow``: the dataflow tag; ``execution``: the
    execution tag (``execution_tag`` is accepted too); ``store``: a store path or URL to
    configure now. Framework options (such as ``lightning``) stay in ``options``.
    """

    tracer_provider: Any = None
    dataflow: str | None = None
    execution: str | None = None
    store: Any = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> Settings:
        known = {"tracer_provider", "dataflow", "execution", "store"}
        values: dict[str, Any] = {}
        options: dict[str, Any] = {}
        for key, value in kwargs.items():
            key = _ALIASES.get(key, key)
            if key in known:
                if value is not None:
                    values[key] = str(value) if key in ("dataflow", "execution") else value
            elif key != "skip_dep_check":  # BaseInstrumentor's own keyword
                options[key] = value
        return cls(**values, options=options)

    def as_kwargs(self) -> dict[str, Any]:
        """Keywords that instrument with these settings again."""
        out = {k: getattr(self, k) for k in ("tracer_provider", "dataflow", "execution", "store")}
        return {k: v for k, v in {**out, **self.options}.items() if v is not None}


_lock = threading.Lock()
_active: list[Settings] = []  # one entry per instrumented integration, newest last


def activate(settings: Settings) -> None:
    """Settings of an instrumentor that has just been instrumented."""
    with _lock:
        _active.append(settings)
        provider = settings.tracer_provider
    if provider is not None:
        tracing.use_tracer_provider(provider)


def deactivate(settings: Settings) -> None:
    """Settings of an instrumentor being uninstrumented (the previous ones apply again)."""
    with _lock:
        for i in range(len(_active) - 1, -1, -1):
            if _active[i] is settings:
                del _active[i]
                break
        provider = next((s.tracer_provider for s in reversed(_active) if s.tracer_provider is not None), None)
    if settings.tracer_provider is not None:
        tracing.use_tracer_provider(provider)


def active_settings() -> Settings | None:
    with _lock:
        return _active[-1] if _active else None


def resolve(
    dataflow: str | None = None, execution: str | None = None, *, default_dataflow: str
) -> tuple[Dataflow, str]:
    """The dataflow (defined and saved in this process) and execution tag of a new task."""
    ex = tracing.current_execution()
    if ex is not None:
        return lookup_or_create(ex.dataflow), ex.tag
    settings = active_settings()
    tag = dataflow or (settings.dataflow if settings else None) or os.environ.get(DATAFLOW_ENV) or default_dataflow
    df = lookup_or_create(tag)
    exec_tag = execution or (settings.execution if settings else None) or tracing.current_execution_tag(df.tag)
    return df, str(exec_tag)


__all__ = ["DATAFLOW_ENV", "Settings", "activate", "active_settings", "deactivate", "resolve"]
