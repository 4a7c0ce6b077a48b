"""Values every integration writes the same way."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from dlprov_otel import semconv


def timestamp() -> str:
    """Local time as the seed's rows hold it (``YYYY-MM-DD HH:MM:SS``)."""
    return dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def clean_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Metric names made valid attribute names."""
    return {semconv.sanitize_name(k): v for k, v in metrics.items()}


__all__ = ["clean_metrics", "timestamp"]
