"""``Set(tag, type, attributes, dependency=None)``: a dataset definition."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dlprov_otel import model

from .set_type import SetType


class Set(model.Set):
    """A set of a transformation. The original's ``extractors`` (raw-data extraction by the
    DfAnalyzer server) are accepted and not used; ``dependency`` names the transformation that
    produces the set."""

    def __init__(
        self,
        tag: str,
        type: SetType | str = SetType.INPUT,
        attributes: Iterable[model.Attribute] = (),
        extractors: Any = None,
        dependency: Any = None,
    ) -> None:
        if dependency is None and extractors is not None and not isinstance(extractors, list | tuple):
            extractors, dependency = None, extractors  # Set(tag, type, attributes, dependency)
        super().__init__(tag, type, attributes, dependency or None)
        self.extractors = list(extractors or [])

    def add_extractor(self, extractor: Any) -> None:
        self.extractors.append(extractor)


__all__ = ["Set"]
