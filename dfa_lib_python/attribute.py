"""``Attribute(name, type)``: a typed attribute of a set."""

from __future__ import annotations

from typing import Any

from dlprov_otel import model

from .attribute_type import AttributeType


class Attribute(model.Attribute):
    """``Attribute(name, AttributeType.NUMERIC)``; ``RDFILE`` is stored as ``FILE``."""

    def __init__(self, tag: str, type: Any = AttributeType.TEXT, optional: bool = False) -> None:
        value = str(getattr(type, "value", type)).upper()
        super().__init__(tag, "FILE" if value == "RDFILE" else value, optional)  # type: ignore[arg-type]


__all__ = ["Attribute"]
