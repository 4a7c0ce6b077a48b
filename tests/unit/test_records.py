"""SDK spans and OTLP requests decode to the same records (the store sees one shape)."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, Status, StatusCode

from dlprov_otel import Dataflow, DataSet, Element, Task, semconv, spool
from dlprov_otel.records import SpanRecord, from_otlp, from_readable_spans


def sdk_spans():
    """A few spans straight from the SDK: ours (with links, status, lists) and another library's."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "svc", "host.name": "h1"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    parent = tracer.start_span("task", attributes={semconv.KIND: semconv.KIND_TASK, semconv.TASK_ID: "1"})
    ctx = trace.set_span_in_context(parent)
    tracer.start_span(
        "dataset",
        context=ctx,
        attributes={
            semconv.KIND: semconv.KIND_DATASET,
            semconv.data_key("loss"): [0.5, 0.25],
            semconv.data_key("name"): ["a", "b"],
            semconv.DATASET_ELEMENTS: 2,
            "flag": True,
        },
        links=[Link(parent.get_span_context())],
    ).end()
    tracer.start_span("http GET", attributes={"http.method": "GET"}).end()  # not ours
    parent.set_status(Status(StatusCode.ERROR, "boom"))
    parent.end()
    provider.shutdown()
    return exporter.get_finished_spans()


def as_tuple(r: SpanRecord):
    return (
        r.trace_id,
        r.span_id,
        r.parent_span_id,
        r.name,
        r.start_ns,
        r.end_ns,
        {k: tuple(v) if isinstance(v, list | tuple) else v for k, v in r.attributes.items()},
        r.status_code,
        r.status_message,
        r.links,
        r.resource,
    )


def test_sdk_spans_become_records():
    spans = sdk_spans()
    records = from_readable_spans(spans)
    assert [r.name for r in records] == ["dataset", "task"]  # the other library's span is left out
    dataset, task = records
    assert len(dataset.trace_id) == 32 and len(dataset.span_id) == 16
    assert dataset.parent_span_id == task.span_id and task.parent_span_id is None
    assert dataset.links == [(task.trace_id, task.span_id)]
    assert dataset.kind == semconv.KIND_DATASET
    assert tuple(dataset.attributes[semconv.data_key("loss")]) == (0.5, 0.25)
    assert task.status_code == "ERROR" and task.status_message == "boom"
    assert dataset.status_code == "UNSET"
    assert dataset.attr("host.name") == "h1"  # from the resource
    assert dataset.attr(semconv.TASK_ID, "none") == "none"
    assert dataset.start_ns <= dataset.end_ns


def test_otlp_decodes_to_the_same_records():
    spans = sdk_spans()
    request = ExportTraceServiceRequest()
    request.ParseFromString(spool.encode(spans))
    assert [as_tuple(r) for r in from_otlp(request)] == [as_tuple(r) for r in from_readable_spans(spans)]


def test_api_spans_decode_alike_on_both_paths(memory, exec_tag):
    Dataflow("mnist", predefined=True).save()
    t = Task(1, "mnist", exec_tag, "testmodel")
    t.add_dataset(DataSet("otestmodel", [Element([0.5, float("nan")]), Element([None, 0.75])]))
    t.end()
    spans = memory.spans()
    request = ExportTraceServiceRequest()
    request.ParseFromString(spool.encode(spans))
    direct, decoded = from_readable_spans(spans), from_otlp(request)
    assert [r.kind for r in direct] == [r.kind for r in decoded]
    (d1,) = [r for r in direct if r.kind == semconv.KIND_DATASET]
    (d2,) = [r for r in decoded if r.kind == semconv.KIND_DATASET]
    loss1, loss2 = d1.attributes[semconv.data_key("loss")], d2.attributes[semconv.data_key("loss")]
    assert tuple(loss1) == (0.5, None) and list(loss2) == [0.5, None]
    acc = d2.attributes[semconv.data_key("accuracy")]
    assert acc[0] != acc[0] and acc[1] == 0.75  # NaN survives the protobuf path
