"""``AttributeType``: the original's four types; ``RDFILE`` (a raw-data file) is stored as ``FILE``."""

from __future__ import annotations

from enum import Enum


class AttributeType(str, Enum):
    """Type of a set attribute."""

    TEXT = "TEXT"
    NUMERIC = "NUMERIC"
    FILE = "FILE"
    RDFILE = "RDFILE"


__all__ = ["AttributeType"]
