"""A dataflow's columns change only through its own specification (issue 14, ownership).

- through a real collector: a row span whose attributes its set does not declare is refused
  (OTLP partial success, exact count) and adds no column; once a new version of the dataflow
  declares the attribute, the same span is stored;
- a span naming an execution of another dataflow is refused;
- in process (embedded store): the SDK declares an attribute it has not seen (a new version of
  the dataflow, once per name) before the first row that carries it; a hand-built row span
  that skips that is quarantined with the store's reason.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import dlprov_otel
from dlprov_otel import (
    Attribute,
    AttributeType,
    Dataflow,
    DataSet,
    Element,
    Set,
    SetType,
    Task,
    client,
    semconv,
    spool,
    tracing,
)
from dlprov_otel.api import dataset_attributes
from tests.collector_proc import METRICS, CollectorProcess, dataflow_attributes, post, start_collector


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    col = start_collector(tmp_path_factory.mktemp("spec-columns"))
    yield col
    assert col.stop() == 0, col.log_tail()


def metrics_set() -> Set:
    """A copy of the collector tests' ``metrics`` set (declaring into it leaves METRICS as it is)."""
    return Set("metrics", SetType.OUTPUT, [Attribute(a.name, a.type, a.optional) for a in METRICS.attributes])


def run_request(exec_tag: str, rows: list[dict], dataflow: str = "remote", execution_dataflow: str = "remote") -> bytes:
    """One run's spans (its own trace): the execution's start marker, then one dataset span per
    row of ``metrics`` naming ``dataflow``."""
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "spec-columns-test"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("tests.spec_columns")
    with tracer.start_as_current_span(f"execution {exec_tag}"):
        tracer.start_span("execution start", attributes={
            semconv.KIND: semconv.KIND_EXECUTION_START,
            semconv.EXECUTION_TAG: exec_tag,
            semconv.DATAFLOW_TAG: execution_dataflow,
        }).end()
        for row in rows:
            attrs = dataset_attributes(metrics_set(), SetType.OUTPUT, [Element(row)])
            attrs.update({semconv.DATAFLOW_TAG: dataflow, semconv.EXECUTION_TAG: exec_tag, semconv.TASK_ID: "1",
                          semconv.TRANSFORMATION_TAG: "train"})
            tracer.start_span("metrics", attributes=attrs).end()
    provider.shutdown()
    return spool.encode(memory.get_finished_spans())


def columns(col: CollectorProcess, table: str) -> list[str]:
    return list(client.query(col.url, f"SELECT * FROM {table} WHERE 1 = 0")[0])


def rejected(body: bytes) -> tuple[int, str]:
    partial = ExportTraceServiceResponse.FromString(body).partial_success
    return partial.rejected_spans, partial.error_message


def test_undeclared_attributes_are_refused_until_the_spec_declares_them(collector):
    tag = f"undeclared-{uuid.uuid4().hex[:8]}"
    good = [{"step": i, "loss": 0.5, "note": "ok"} for i in range(3)]
    extra = [{"step": 10 + i, "loss": 0.5, "note": "extra", "f1": 0.25 * i} for i in range(1, 3)]
    status, body = post(collector.url + "/v1/traces", run_request(tag, good + extra))
    assert status == 200
    count, message = rejected(body)
    assert count == 2  # exactly the two spans with the undeclared attribute
    assert "has no attribute(s) ['f1'] in its specification" in message
    steps = f"""SELECT step FROM "remote".metrics WHERE execution_tag = '{tag}' ORDER BY step"""
    assert [r[0] for r in client.query(collector.url, steps)[1]] == [0.0, 1.0, 2.0]
    assert "f1" not in columns(collector, '"remote".metrics')  # no column from a row span

    # a new version of the dataflow declares it: then the same rows are stored, with the column
    declared = metrics_set()
    declared.add_attribute(Attribute("f1", AttributeType.NUMERIC, optional=True))
    df = Dataflow("remote")
    df.add_transformation(dlprov_otel.Transformation("train", [], [declared]))
    spec = df.to_spec()
    attrs = {**dataflow_attributes(), semconv.DATAFLOW_SPEC: spec.to_json(), semconv.DATAFLOW_SPEC_HASH: spec.hash}
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.get_tracer("tests").start_span("dataflow remote", attributes=attrs).end()
    assert rejected(post(collector.url + "/v1/traces", spool.encode(memory.get_finished_spans()))[1])[0] == 0
    assert "f1" in columns(collector, '"remote".metrics')
    again = f"again-{tag}"
    status, body = post(collector.url + "/v1/traces", run_request(again, extra))
    assert status == 200 and rejected(body)[0] == 0, body
    f1 = f"""SELECT f1 FROM "remote".metrics WHERE execution_tag = '{again}' ORDER BY step"""
    assert [r[0] for r in client.query(collector.url, f1)[1]] == [0.25, 0.5]


def test_many_undeclared_spans_are_one_partial_success(collector):
    """Refused before the store (not by bisecting a failing batch, which gives up with a 503
    that a sender retries forever beyond 64 bad spans)."""
    tag = f"many-undeclared-{uuid.uuid4().hex[:8]}"
    rows = [{"step": i, "loss": 0.1, "note": "x", **({"recall": 0.5} if i % 2 else {})} for i in range(300)]
    status, body = post(collector.url + "/v1/traces", run_request(tag, rows))
    assert status == 200
    count, message = rejected(body)
    assert count == 150 and "has no attribute(s) ['recall']" in message
    found = client.query(collector.url, f"""SELECT COUNT(*) FROM "remote".metrics WHERE execution_tag = '{tag}'""")[1]
    assert found == [(150,)]
    assert "recall" not in columns(collector, '"remote".metrics')


def test_a_span_cannot_name_another_dataflow_than_its_executions(collector):
    other = Dataflow("other_flow")
    other.add_transformation(dlprov_otel.Transformation("train", [], [metrics_set()]))
    spec = other.to_spec()
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.get_tracer("tests").start_span("dataflow other_flow", attributes={
        semconv.KIND: semconv.KIND_DATAFLOW, semconv.DATAFLOW_TAG: "other_flow",
        semconv.DATAFLOW_SPEC: spec.to_json(), semconv.DATAFLOW_SPEC_HASH: spec.hash}).end()
    assert rejected(post(collector.url + "/v1/traces", spool.encode(memory.get_finished_spans()))[1])[0] == 0

    tag = f"mixed-{uuid.uuid4().hex[:8]}"
    rows = [{"step": i, "loss": 0.1, "note": "x"} for i in range(4)]
    status, body = post(collector.url + "/v1/traces", run_request(tag, rows, dataflow="other_flow"))
    assert status == 200
    count, message = rejected(body)
    assert count == 4 and "is a run of dataflow 'remote'" in message
    for table in ('"remote".metrics', '"other_flow".metrics'):
        found = client.query(collector.url, f"SELECT COUNT(*) FROM {table} WHERE execution_tag = '{tag}'")[1]
        assert found == [(0,)]


# --- in process (embedded store) ------------------------------------------------------------------
def spec_versions(store, dataflow: str) -> list[dict]:
    rows = store.query("SELECT version, spec FROM dataflow_version WHERE dataflow_tag = ? ORDER BY version",
                       [dataflow]).rows
    return [json.loads(spec) for _, spec in rows]


def attributes_of(spec: dict, set_tag: str) -> dict[str, dict]:
    (s,) = [s for s in spec["sets"] if s["tag"] == set_tag]
    return {a["name"]: a for a in s["attributes"]}


def test_the_sdk_declares_a_new_attribute_once_before_its_first_row(dlprov):
    df = Dataflow("declared_flow", predefined=True)
    df.save()
    for task_id in (1, 2):  # the second task carries the same extra attribute: no further version
        t = Task(task_id, df, "declared-run", "testmodel")
        t.add_dataset(DataSet("otestmodel", [{"loss": 0.1, "accuracy": 0.9, "f1": 0.5 + task_id / 10}]))
        t.end()
    assert dlprov.flush()
    store = dlprov.store
    versions = spec_versions(store, "declared_flow")
    assert len(versions) == 2
    assert "f1" not in attributes_of(versions[0], "otestmodel")
    assert attributes_of(versions[1], "otestmodel")["f1"] == {"name": "f1", "type": "NUMERIC", "optional": True}
    got = store.run_script(['SET SCHEMA "declared_flow"', "SELECT f1 FROM otestmodel ORDER BY f1"]).rows
    assert got == [(0.6,), (0.7,)]
    assert dlprov.stats()["quarantined"] == 0


def test_an_undeclared_row_span_is_quarantined_in_process(dlprov, tmp_path):
    df = Dataflow("strict_flow", predefined=True)
    df.save()
    t = Task(1, df, "strict-run", "testmodel").begin()
    # a row span built by hand, past the SDK's declaration (a copy of the set gets the attribute)
    known = df.set("otestmodel").attributes
    copy = Set("otestmodel", SetType.OUTPUT, [Attribute(a.name, a.type, a.optional) for a in known])
    attrs = dataset_attributes(copy, SetType.OUTPUT, [Element({"loss": 0.2, "accuracy": 0.8, "recall": 0.3})])
    attrs.update(t._common)
    tracing.emit_dataset_span(t._ctx, "otestmodel", attrs)
    t.add_dataset(DataSet("otestmodel", [Element([0.1, 0.9])]))
    t.end()
    dlprov.flush()
    stats = dlprov.stats()
    assert stats["quarantined"] == 1, stats
    lines = [json.loads(line) for p in (tmp_path / "spool" / "quarantine").glob("*.jsonl")
             for line in p.read_text().splitlines()]
    assert len(lines) == 1 and "has no attribute(s) ['recall']" in lines[0]["error"]
    store = dlprov.store
    rows = store.run_script(['SET SCHEMA "strict_flow"', "SELECT * FROM otestmodel"]).as_dicts()
    assert [(r["loss"], r["accuracy"]) for r in rows] == [(0.1, 0.9)] and "recall" not in rows[0]
