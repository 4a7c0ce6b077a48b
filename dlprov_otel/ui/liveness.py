"""Whether a RUNNING execution still runs: the dashboard's names for
:mod:`dlprov_otel.store.liveness`, where the read model's execution list (``dlprov executions``,
``/v1/executions``) takes the same killed status from."""

from __future__ import annotations

from dlprov_otel.store.liveness import (
    DEFAULT_KILLED_AFTER_S,
    KILLED,
    effective_status,
    killed_after_s,
    now,
    run_state,
    seconds,
)

__all__ = ["DEFAULT_KILLED_AFTER_S", "KILLED", "effective_status", "killed_after_s", "now", "run_state", "seconds"]
