"""``Program(name, path)``: the program a transformation runs (kept with the object; DLProv-OTel
records the entry script and its digest itself)."""

from __future__ import annotations


class Program:
    """A program: its name and path, and the transformation and dataflow it belongs to."""

    def __init__(self, name: str, path: str) -> None:
        if not isinstance(name, str) or not isinstance(path, str):
            raise TypeError("Program(name, path) takes two strings")
        self.name = name
        self.path = path
        self.transformationTag = ""
        self.dataflowTag = ""

    def __repr__(self) -> str:
        return f"Program({self.name!r}, {self.path!r})"


__all__ = ["Program"]
