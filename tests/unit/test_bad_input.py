"""Bad input to the DfAnalyzer API gets one clear message naming the thing that is wrong."""

from __future__ import annotations

import pytest

from dlprov_otel import Dataflow, DataSet, Element, ElementError, SpecError, Task


@pytest.fixture
def mnist(memory):
    df = Dataflow("mnist", predefined=True)
    df.save()
    return df


def test_unknown_transformation(mnist, exec_tag):
    with pytest.raises(
        SpecError, match=r"unknown transformation 'TrainModle' in dataflow 'mnist' \(known: .*trainmodel"
    ):
        Task(1, "mnist", exec_tag, "TrainModle")


def test_unknown_dataflow(memory, exec_tag):
    with pytest.raises(SpecError, match=r"dataflow 'nosuch' is not defined in this process"):
        Task(1, "nosuch", exec_tag, "trainmodel")


def test_a_task_needs_a_transformation(mnist, exec_tag):
    with pytest.raises(SpecError, match=r"Task needs a transformation tag"):
        Task(1, "mnist", exec_tag)


def test_unknown_set(mnist, exec_tag):
    t = Task(1, "mnist", exec_tag, "trainmodel")
    with pytest.raises(SpecError, match=r"unknown set 'otrainmode' in dataflow 'mnist' \(known: .*otrainmodel"):
        t.add_dataset(DataSet("oTrainMode", [Element([1])]))


def test_set_of_another_transformation(mnist, exec_tag):
    t = Task(1, "mnist", exec_tag, "trainmodel")
    with pytest.raises(
        SpecError, match=r"'otestmodel' is neither an input nor an output of transformation 'trainmodel'"
    ):
        t.add_dataset(DataSet("otestmodel", [Element([0.1, 0.2])]))


def test_wrong_arity(mnist, exec_tag):
    t = Task(1, "mnist", exec_tag, "trainmodel")
    with pytest.raises(ElementError, match=r"set 'itrainmodel' takes 4 to 5 values .* element 0 has 3"):
        t.add_dataset(DataSet("iTrainModel", [Element(["adam", 0.1, 2])]))
    with pytest.raises(ElementError, match=r"set 'otestmodel' takes 2 values \(loss, accuracy\), element 1 has 3"):
        Task(2, "mnist", exec_tag, "testmodel").add_dataset(
            DataSet("otestmodel", [Element([1, 2]), Element([1, 2, 3])])
        )


def test_a_missing_required_attribute_by_name(mnist, exec_tag):
    t = Task(1, "mnist", exec_tag, "testmodel")
    with pytest.raises(ElementError, match=r"set 'otestmodel': element 0 lacks required attribute\(s\) \['accuracy'\]"):
        t.add_dataset(DataSet("otestmodel", [{"loss": 0.1}]))


def test_wrong_type_names_set_and_attribute(mnist, exec_tag):
    t = Task(1, "mnist", exec_tag, "trainmodel")
    with pytest.raises(
        ElementError, match=r"set 'itrainmodel', attribute 'learning_rate' is NUMERIC but got str 'fast'"
    ):
        t.add_dataset(DataSet("itrainmodel", [Element(["adam", "fast", 2, 3])]))


def test_nul_in_text_is_refused_not_truncated(mnist, exec_tag):
    t = Task(1, "mnist", exec_tag, "loaddata")
    with pytest.raises(ElementError, match=r"attribute 'dataset_name': the text contains a NUL character"):
        t.add_dataset(DataSet("iinputdataset", [Element(["a\x00b", "src"])]))


def test_elements_are_lists_or_mappings(memory):
    with pytest.raises(ElementError, match=r"expects a list of values, got the string 'abc'"):
        Element("abc")
    with pytest.raises(ElementError, match=r"either positional values or named values"):
        Element([1], loss=2)


def test_a_refused_dataset_records_nothing(mnist, memory, exec_tag):
    t = Task(1, "mnist", exec_tag, "testmodel")
    with pytest.raises(ElementError):
        t.add_dataset(DataSet("otestmodel", [Element([0.1, 0.2]), Element(["bad", 0.3])]))
    t.add_dataset(DataSet("otestmodel", [Element([0.4, 0.5])]))
    t.end()
    (d,) = memory.kind("dataset")
    assert d.attributes["dlprov.data.loss"] == (0.4,)  # the refused dataset left nothing behind
