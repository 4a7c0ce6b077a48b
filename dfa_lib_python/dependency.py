"""``Dependency(tags, ids)``: the tasks a task depends on (transformation tags and task ids)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class Dependency:
    """Tasks ``ids`` (of transformations ``tags``, position by position) that a task follows."""

    def __init__(self, tags: Sequence[Any], ids: Sequence[Any]) -> None:
        if not isinstance(tags, list | tuple) or not isinstance(ids, list | tuple):
            raise TypeError("Dependency(tags, ids) takes two lists: transformation tags and task ids")
        self.tags = [str(getattr(t, "tag", t)) for t in tags]
        self.ids = [str(getattr(i, "id", i)) for i in ids]

    def pairs(self) -> list[tuple[str, str]]:
        """``(task id, transformation tag)`` for each task; the tag is ``""`` where none was given."""
        return [(i, self.tags[n] if n < len(self.tags) else "") for n, i in enumerate(self.ids)]

    def __repr__(self) -> str:
        return f"Dependency({self.tags!r}, {self.ids!r})"


__all__ = ["Dependency"]
