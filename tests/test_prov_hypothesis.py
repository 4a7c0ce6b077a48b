"""Any recorded execution (odd tags, unicode, quotes, NaN, extra attributes) becomes a PROV
document that keeps its values and survives PROV-JSON, PROV-N and PROV-XML."""

from __future__ import annotations

import math
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings
from prov.model import ProvDocument

import dlprov_otel
from dlprov_otel import Dataflow, DataSet, Element, Task
from dlprov_otel.prov import build_document
from dlprov_otel.prov.builder import clean_text

TAGS = st.from_regex(r"[a-z_][a-z0-9_]{0,15}", fullmatch=True)
# Text the store can hold: any UTF-8-encodable character, quotes, newlines and control
# characters included, but NUL (MonetDB strings end at a NUL byte: the store keeps "a" of "a\x00b").
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20)
NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.just(math.nan),
    st.integers(-(2**40), 2**40),
)
EXTRA_NAMES = st.from_regex(r"x[a-z0-9_]{0,10}", fullmatch=True)


@st.composite
def runs(draw: Any) -> dict[str, Any]:
    return {
        "dataflow": draw(TAGS.filter(lambda t: t not in ("sys", "tmp", "json", "profiler"))),
        "exec_tag": draw(TEXT.filter(bool)),
        "optimizer": draw(TEXT),
        "learning_rate": draw(NUMBERS),
        "epochs": draw(
            st.lists(
                st.fixed_dictionaries(
                    {"loss": NUMBERS, "note": TEXT},
                    optional={"extra": st.tuples(EXTRA_NAMES, st.one_of(NUMBERS, TEXT))},
                ),
                max_size=3,
            )
        ),
    }


def _attr(record: Any, name: str) -> Any:
    values = record.get_attribute(name)
    return next(iter(values)) if values else None


def _same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, int | float) and not isinstance(expected, bool):
        if math.isnan(expected):
            return actual is None
        return isinstance(actual, float) and actual == float(expected)
    # characters XML 1.0 cannot carry are escaped (\x0b) in every format alike
    return actual == clean_text(expected)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(run=runs())
def test_any_execution_round_trips(run: dict[str, Any], tmp_path_factory) -> None:
    spool = tmp_path_factory.mktemp("spool")
    tel = dlprov_otel.configure(store="monetdbe::memory:", spool_dir=spool, schedule_delay=0.05)
    try:
        df = Dataflow(run["dataflow"], predefined=True)
        df.save()
        with dlprov_otel.execution(run["exec_tag"], dataflow=df):
            t = Task(1, df, run["exec_tag"], "trainmodel")
            t.add_dataset(DataSet("itrainmodel", [Element([run["optimizer"], run["learning_rate"], 1, 2])]))
            t.begin()
            for i, epoch in enumerate(run["epochs"]):
                values = {"timestamp": epoch["note"], "elapsed_time": 1.0, "loss": epoch["loss"], "accuracy": 0.5,
                          "val_loss": math.nan, "val_accuracy": math.nan, "epoch": i}
                if "extra" in epoch:  # an undeclared attribute: the SDK declares it (a new version) before its row
                    values[f"{epoch['extra'][0]}_{i}"] = epoch["extra"][1]
                t.add_dataset(DataSet("otrainmodel", [Element(values)]))
                t.save()
            t.end()
        assert dlprov_otel.flush()
        doc = build_document(tel.store, execution=run["exec_tag"])
        again = build_document(tel.store, execution=run["exec_tag"])
    finally:
        dlprov_otel.shutdown()

    assert doc.serialize(format="json") == again.serialize(format="json")  # stable identifiers
    entities = [r for r in doc.get_records() if r.is_element() and _attr(r, "dlprov:ds_tag") is not None]
    inputs = [e for e in entities if _attr(e, "dlprov:ds_tag") == "itrainmodel"]
    outputs = sorted(
        (e for e in entities if _attr(e, "dlprov:ds_tag") == "otrainmodel"), key=lambda e: _attr(e, "dlprov:epoch")
    )
    assert len(inputs) == 1 and len(outputs) == len(run["epochs"])
    assert _same(run["optimizer"], _attr(inputs[0], "dlprov:optimizer_name") or "")
    assert _same(run["learning_rate"], _attr(inputs[0], "dlprov:learning_rate"))
    for i, (entity, epoch) in enumerate(zip(outputs, run["epochs"], strict=True)):
        assert _same(epoch["loss"], _attr(entity, "dlprov:loss"))
        assert _same(epoch["note"], _attr(entity, "dlprov:timestamp") or "")
        assert _attr(entity, "dlprov:val_loss") is None
        if "extra" in epoch:
            name, value = epoch["extra"]
            found = _attr(entity, f"dlprov:{name}_{i}")
            assert _same(value, found if found is not None or not isinstance(value, str) else "")
    execution = next(r for r in doc.get_records() if _attr(r, "dlprov:exec_tag") is not None)
    assert _same(run["exec_tag"], _attr(execution, "dlprov:exec_tag"))

    via_json = ProvDocument.deserialize(content=doc.serialize(format="json"), format="json")
    assert via_json == doc
    via_provn = ProvDocument.deserialize(content=via_json.serialize(format="provn"), format="provn")
    assert via_provn == doc
    via_xml = ProvDocument.deserialize(content=via_provn.serialize(format="xml"), format="xml")
    assert via_xml == doc
