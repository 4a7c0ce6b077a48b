"""Errors of the PROV export."""

from __future__ import annotations

from ..errors import DLProvError


class ProvExportError(DLProvError):
    """A PROV document cannot be built or written."""


class UnknownTagError(ProvExportError, LookupError):
    """The execution or dataflow named is not in the store (the message lists the known ones)."""


__all__ = ["ProvExportError", "UnknownTagError"]
