"""``DataSet(tag, elements)``: elements of one set, as a task reads or produces them."""

from dlprov_otel.api import DataSet

__all__ = ["DataSet"]
