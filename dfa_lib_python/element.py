"""``Element(values)``: one row of a dataset, its values in the set's attribute order."""

from dlprov_otel.api import Element

__all__ = ["Element"]
