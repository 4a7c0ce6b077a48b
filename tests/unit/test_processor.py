"""The lossless span processor: a full queue waits instead of dropping; failures are retried."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dlprov_otel.processor import LosslessSpanProcessor


class SlowFlakyExporter(SpanExporter):
    """Takes its time and refuses the first batches, like a store under load."""

    def __init__(self, fail_first: int = 0, delay: float = 0.0) -> None:
        self.names: list[str] = []
        self.fail_first = fail_first
        self.delay = delay
        self.calls = 0
        self.lock = threading.Lock()

    def export(self, spans):
        with self.lock:
            self.calls += 1
            time.sleep(self.delay)
            if self.calls <= self.fail_first:
                return SpanExportResult.FAILURE
            self.names.extend(s.name for s in spans)
            return SpanExportResult.SUCCESS


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll until ``condition()`` holds; fail after ``timeout`` seconds (a loaded machine is slow)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def run(processor: LosslessSpanProcessor, n: int) -> TracerProvider:
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    for i in range(n):
        tracer.start_span(f"s{i}").end()
    return provider


def test_full_queue_makes_the_caller_wait_instead_of_dropping():
    exporter = SlowFlakyExporter(delay=0.01)
    processor = LosslessSpanProcessor(exporter, schedule_delay=0.01, max_batch=50, max_queue=100)
    provider = run(processor, 3000)  # the SDK's BatchSpanProcessor would drop past 2,048
    assert processor.force_flush(30_000)
    assert exporter.names == [f"s{i}" for i in range(3000)]  # all of them, in order
    assert processor.stats.blocked_waits > 0
    assert processor.stats.dropped == 0
    provider.shutdown()


def test_failed_batches_are_retried_until_they_pass():
    exporter = SlowFlakyExporter(fail_first=3)
    processor = LosslessSpanProcessor(exporter, schedule_delay=0.01)
    provider = run(processor, 10)
    assert processor.force_flush(30_000)
    assert sorted(exporter.names) == sorted(f"s{i}" for i in range(10))
    assert processor.stats.export_failures == 3
    assert processor.stats.exported == 10
    provider.shutdown()


def test_spans_left_at_shutdown_go_to_the_spool():
    spooled: list[str] = []
    exporter = SlowFlakyExporter(fail_first=10**9)
    processor = LosslessSpanProcessor(
        exporter,
        schedule_delay=0.01,
        shutdown_timeout=0.5,
        spool=lambda spans: spooled.extend(s.name for s in spans) or "mem",
    )
    provider = run(processor, 5)
    provider.shutdown()
    assert sorted(spooled) == sorted(f"s{i}" for i in range(5))
    assert processor.stats.spooled == 5 and processor.stats.dropped == 0


def test_a_batch_refused_for_too_long_is_spooled_and_the_rest_passes():
    spooled: list[str] = []

    class RefusesPoison(SlowFlakyExporter):
        def export(self, spans):
            if any(s.name == "poison" for s in spans):
                return SpanExportResult.FAILURE
            return super().export(spans)

    exporter = RefusesPoison()
    processor = LosslessSpanProcessor(
        exporter, schedule_delay=0.01, max_retry=0.5, spool=lambda spans: spooled.extend(s.name for s in spans) or "mem"
    )
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    tracer.start_span("poison").end()
    wait_for(lambda: processor.stats.export_failures >= 1)  # "poison" is in a batch of its own
    tracer.start_span("after").end()
    wait_for(lambda: "after" in exporter.names)
    assert "poison" in spooled and processor.stats.dropped == 0
    provider.shutdown()


def test_in_front_of_the_in_memory_exporter_every_span_is_counted_once():
    exporter = InMemorySpanExporter()
    processor = LosslessSpanProcessor(exporter, schedule_delay=0.01, max_batch=7, max_queue=10)
    provider = run(processor, 100)
    assert processor.force_flush(30_000)
    assert [s.name for s in exporter.get_finished_spans()] == [f"s{i}" for i in range(100)]
    stats = processor.stats.as_dict()
    assert stats["queued"] == stats["exported"] == 100
    assert stats["dropped"] == stats["spooled"] == stats["export_failures"] == 0
    provider.shutdown()


def test_a_span_ended_after_shutdown_is_still_exported():
    exporter = SlowFlakyExporter()  # stays usable after the processor has shut down
    processor = LosslessSpanProcessor(exporter, schedule_delay=0.01)
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(processor)
    late = provider.get_tracer("t").start_span("late")
    processor.shutdown()
    late.end()
    assert exporter.names == ["late"]
    assert processor.stats.exported == 1 and processor.stats.dropped == 0


def test_without_a_spool_a_lost_span_is_counted_as_dropped():
    exporter = SlowFlakyExporter(fail_first=10**9)
    processor = LosslessSpanProcessor(exporter, schedule_delay=0.01, shutdown_timeout=0.2)
    provider = run(processor, 3)
    provider.shutdown()
    assert processor.stats.dropped == 3 and processor.stats.exported == 0
