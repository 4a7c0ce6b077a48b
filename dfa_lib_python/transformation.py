"""``Transformation(tag, sets=[])``: a step of the dataflow with its input and output sets."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from dlprov_otel import model

from .program import Program
from .set import Set
from .set_type import SetType


class Transformation(model.Transformation):
    """A transformation; each set joins it in the role of its own type (``set_sets``, ``add_set``),
    as in the original, or by the ``input``/``output`` properties."""

    def __init__(
        self, tag: str, sets: Iterable[model.Set] | None = None, inputs: Sequence[model.Set] = (),
        outputs: Sequence[model.Set] = (),
    ) -> None:
        super().__init__(tag, inputs, outputs)
        self.programs: list[Program] = []
        self.set_sets(sets or [])

    @property
    def sets(self) -> list[model.Set]:
        return [*self.inputs, *self.outputs]

    @property
    def input(self) -> list[model.Set]:
        return list(self.inputs)

    @input.setter
    def input(self, sets: Iterable[model.Set]) -> None:
        self.inputs = []
        for s in sets:
            self.add_set(s, SetType.INPUT)

    @property
    def output(self) -> list[model.Set]:
        return list(self.outputs)

    @output.setter
    def output(self, sets: Iterable[model.Set]) -> None:
        self.outputs = []
        for s in sets:
            self.add_set(s, SetType.OUTPUT)

    def add_program(self, program: Program) -> None:
        program.transformationTag = self.tag
        self.programs.append(program)

    def set_program(self, program: Program) -> None:
        self.programs = []
        self.add_program(program)


def add_transformation(
    df: Any, label: str, input_attr: list[Any], output_attr: list[Any], prev_out: model.Set | None = None
) -> tuple[Transformation, Set, Set]:
    """The original's helper: a transformation ``label`` with sets ``i<label>`` and ``o<label>``
    (and ``prev_out``, a previous transformation's output, as an input), added to ``df``."""
    tf = Transformation(label)
    tf_input = Set(f"i{label}", SetType.INPUT, input_attr)
    tf_output = Set(f"o{label}", SetType.OUTPUT, output_attr)
    if prev_out is not None:
        tf.add_set(prev_out, SetType.INPUT)
    tf.set_sets([tf_input, tf_output])
    df.add_transformation(tf)
    return tf, tf_input, tf_output


__all__ = ["Transformation", "add_transformation"]
