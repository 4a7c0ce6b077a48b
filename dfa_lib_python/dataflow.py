"""``Dataflow(tag, predefined=False)``: the dataflow specification, recorded by ``save()``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dlprov_otel import api, model


class Dataflow(api.Dataflow):
    """``Dataflow(tag, predefined=True)`` loads DLProv's deep-learning transformations (load,
    split, train, adapt, test); ``Dataflow(tag, [transformations])`` is the original DfAnalyzer
    form. ``save()`` records the specification (a new version when it changed)."""

    def __init__(
        self,
        tag: str,
        predefined: Any = False,
        transformations: Iterable[model.Transformation] | None = None,
        hyperparameters: bool = False,
    ) -> None:
        if isinstance(predefined, list | tuple):  # Dataflow(tag, [transformations])
            predefined, transformations = False, predefined
        super().__init__(tag, predefined=bool(predefined), hyperparameters=hyperparameters)
        for t in transformations or []:
            self.add_transformation(t)

    def save(self) -> None:
        # the original scripts may add sets to a transformation after adding it to the dataflow
        for t in self.transformations.values():
            for s in t.inputs + t.outputs:
                self.sets.setdefault(s.tag, s)
        super().save()


__all__ = ["Dataflow"]
