"""Prospective provenance as pure data: the predefined dataflow, spec versions, tags."""

from __future__ import annotations

import json

import hypothesis.strategies as st
import pytest
from hypothesis import assume, given

from dlprov_otel import semconv
from dlprov_otel.errors import SpecError
from dlprov_otel.model import (
    Attribute,
    AttributeType,
    Dataflow,
    DataflowSpec,
    Set,
    SetType,
    Transformation,
    normalize_tag,
)

FIRST, REST = "abcdefghijklmnopqrstuvwxyz_", "abcdefghijklmnopqrstuvwxyz0123456789_"
TAG = st.builds(str.__add__, st.sampled_from(FIRST), st.text(REST, max_size=62))  # [a-z_][a-z0-9_]{0,62}
ATTR_NAME = TAG.filter(lambda t: t not in semconv.RESERVED_COLUMNS)


def test_the_predefined_dataflow_is_the_dl_life_cycle():
    df = Dataflow("mnist", predefined=True)
    assert list(df.transformations) == ["loaddata", "splitdata", "trainmodel", "adaptation", "testmodel"]
    spec = df.to_spec()
    deps = {t["tag"]: t["dependencies"] for t in spec.transformations}
    assert deps == {
        "loaddata": [],
        "splitdata": ["loaddata"],
        "trainmodel": ["splitdata"],
        "adaptation": ["trainmodel"],
        "testmodel": ["splitdata", "trainmodel"],
    }
    train = df.transformation("TrainModel")
    assert [s.tag for s in train.inputs] == ["itrainmodel", "otrainset"]
    assert [s.tag for s in train.outputs] == ["otrainmodel", "otrainedmodel"]
    itrain = df.set("iTrainModel")
    assert [(a.name, a.type, a.optional) for a in itrain.attributes][-1] == ("batch_size", AttributeType.NUMERIC, True)
    assert df.set("otrainedmodel").attribute("MODEL_DIR").type is AttributeType.FILE
    assert spec.producers_of("otrainmodel") == ["trainmodel"]
    assert spec.consumers_of("otrainmodel") == ["adaptation"]


def test_a_plain_dataflow_is_empty():
    df = Dataflow("empty")
    assert df.transformations == {} and df.to_spec().transformations == []


def test_the_hash_is_stable_and_follows_changes():
    a, b = Dataflow("mnist", predefined=True), Dataflow("mnist", predefined=True)
    assert a.to_spec().hash == b.to_spec().hash and len(a.to_spec().hash) == 16
    assert a.dirty  # never saved
    a.saved_hash = a.to_spec().hash
    assert not a.dirty
    a.set("otestmodel").add_attribute(Attribute("f1", AttributeType.NUMERIC))
    assert a.dirty and a.to_spec().hash != b.to_spec().hash
    assert Dataflow("other", predefined=True).to_spec().hash != b.to_spec().hash


def test_the_spec_round_trips_through_json():
    spec = Dataflow("mnist", predefined=True).to_spec()
    text = spec.to_json()
    again = DataflowSpec.from_json(text)
    assert again == spec and again.to_json() == text and again.hash == spec.hash
    assert json.loads(text)["tag"] == "mnist"


@st.composite
def dataflows(draw) -> Dataflow:
    df = Dataflow(draw(TAG))
    set_tags = draw(st.lists(TAG, min_size=1, max_size=6, unique=True))
    sets = []
    for tag in set_tags:
        names = draw(st.lists(ATTR_NAME, max_size=4, unique=True))
        attrs = [Attribute(n, draw(st.sampled_from(list(AttributeType))), draw(st.booleans())) for n in names]
        sets.append(Set(tag, SetType.INPUT, attrs))
    for tag in draw(st.lists(TAG, max_size=4, unique=True)):
        chosen = draw(st.lists(st.sampled_from(sets), max_size=3, unique_by=lambda s: s.tag))
        half = draw(st.integers(0, len(chosen)))
        df.add_transformation(Transformation(tag, chosen[:half], chosen[half:]))
    return df


@given(dataflows())
def test_any_dataflow_spec_round_trips(df):
    spec = df.to_spec()
    again = DataflowSpec.from_json(spec.to_json())
    assert again.to_json() == spec.to_json() and again.hash == spec.hash
    assert [t["tag"] for t in again.transformations] == list(df.transformations)
    assert again.merged_with(spec).to_json() == spec.to_json()  # merging a version with itself


def test_merging_versions_adds_and_keeps_the_first_type():
    old = Dataflow("m", predefined=True).to_spec()
    newer_df = Dataflow("m", predefined=True)
    newer_df.set("otestmodel").attributes[0] = Attribute("loss", AttributeType.TEXT)  # a changed type
    newer_df.set("otestmodel").add_attribute(Attribute("f1", AttributeType.NUMERIC))
    newer_df.add_transformation(Transformation("export", [newer_df.set("otrainedmodel")], []))
    merged = old.merged_with(newer_df.to_spec())
    attrs = {a["name"]: a["type"] for a in merged.sets["otestmodel"]["attributes"]}
    assert attrs == {"loss": "NUMERIC", "accuracy": "NUMERIC", "f1": "NUMERIC"}
    assert merged.transformation("export") is not None and merged.transformation("loaddata") is not None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "malformed dataflow specification"),
        ('{"transformations": []}', "malformed dataflow specification"),
        ('{"tag": "Bad Tag"}', "invalid dataflow tag"),
        ('{"tag": "m", "transformations": [{"tag": "t", "input": ["nosuch"]}], "sets": []}', "unknown set 'nosuch'"),
        ('{"tag": "m", "sets": [{"tag": "s", "attributes": [{"name": "a", "type": "BLOB"}]}]}', "unknown type"),
        ('{"tag": "m", "sets": [{"tag": "s", "attributes": [{"name": "idx"}]}]}', "reserved"),
    ],
)
def test_a_bad_spec_is_refused(text, message):
    with pytest.raises(SpecError, match=message):
        DataflowSpec.from_json(text)


@given(TAG)
def test_valid_tags_are_normalized(tag):
    assert normalize_tag(f" {tag.upper()} ") == tag


@given(st.text(max_size=80))
def test_any_other_tag_is_refused(text):
    assume(not semconv.TAG_PATTERN.match(text.strip().lower()))
    with pytest.raises(SpecError, match=r"invalid tag .*letters, digits and underscores"):
        normalize_tag(text)


@pytest.mark.parametrize("tag", ["it's", 'a"b', "with space", "semi;colon", "dash-tag", "", "9lives", "a" * 64])
def test_tags_with_quotes_or_spaces(tag):
    with pytest.raises(SpecError, match=r"invalid dataflow tag .*letters, digits and underscores"):
        Dataflow(tag)
    with pytest.raises(SpecError, match=r"invalid set tag"):
        Set(tag, SetType.INPUT, [])
    with pytest.raises(SpecError, match=r"invalid attribute name"):
        Attribute(tag)
    with pytest.raises(SpecError, match=r"invalid transformation tag"):
        Transformation(tag)


@pytest.mark.parametrize("value", [None, 3, b"bytes", ["list"]])
def test_a_tag_must_be_a_string(value):
    with pytest.raises(SpecError, match=r"must be a string"):
        normalize_tag(value, "set tag")


@pytest.mark.parametrize("name", sorted(semconv.RESERVED_COLUMNS))
def test_reserved_attribute_names(name):
    with pytest.raises(SpecError, match=rf"attribute name '{name}' is reserved"):
        Attribute(name)


def test_conflicting_definitions_are_refused():
    df = Dataflow("m", predefined=True)
    with pytest.raises(SpecError, match=r"already has a transformation 'trainmodel'"):
        df.add_transformation(Transformation("trainmodel"))
    other = Set("otestmodel", SetType.OUTPUT, [Attribute("loss", AttributeType.TEXT)])
    with pytest.raises(SpecError, match=r"set 'otestmodel' is already defined .* other attributes"):
        df.add_transformation(Transformation("again", [], [other]))
    s = Set("s", SetType.INPUT, [Attribute("a")])
    with pytest.raises(SpecError, match=r"already has an attribute 'a'"):
        s.add_attribute(Attribute("A"))
    with pytest.raises(SpecError, match=r"already has a set 's'"):
        Transformation("t", [s], [s])
    with pytest.raises(SpecError, match=r"unknown type 'BLOB'"):
        Attribute("b", "BLOB")


def test_sets_take_their_role_from_the_transformation_or_their_own_type():
    i = Set("ins", "input", [Attribute("x")])
    o = Set("outs", SetType.OUTPUT, [Attribute("y")])
    t = Transformation("t")
    t.set_sets([i, o])  # dfa-lib-python's spelling: each set's own type
    assert t.role_of("INS") is SetType.INPUT and t.role_of("outs") is SetType.OUTPUT and t.role_of("x") is None
    assert Set("dep", dependency=t).dependency_tag == "t"
