"""The journal: every span is on disk before it is exported, reads back whole, survives a torn
last record, and is kept until the store has committed it."""

from __future__ import annotations

import errno
import math
from pathlib import Path

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from dlprov_otel import journal, semconv, tracing
from dlprov_otel.records import from_readable_spans

from .user_scripts import seed_snippet


def _plain(value):
    if isinstance(value, list | tuple):
        return tuple(_plain(v) for v in value)
    return "NaN" if isinstance(value, float) and math.isnan(value) else value  # NaN != NaN


def comparable(spans):
    return sorted(
        (
            r.trace_id,
            r.span_id,
            r.parent_span_id,
            r.name,
            {k: _plain(v) for k, v in r.attributes.items()},
            r.status_code,
            r.links,
        )
        for r in from_readable_spans(spans)
    )


def sdk_spans(n: int):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    for i in range(n):
        provider.get_tracer("t").start_span(f"s{i}", attributes={semconv.KIND: semconv.KIND_TASK, "i": i}).end()
    return exporter.get_finished_spans()


def test_the_pipeline_journals_every_span_it_exports(memory, tmp_path: Path):
    seed_snippet("journalled", epochs=3)
    exported = memory.spans()
    (path,) = (journal.journal_root(tmp_path / "spool") / journal.target_key(memory.telemetry.target)).glob("*.jnl")
    target, journalled = journal.load(path, from_checkpoint=False)
    assert target == memory.telemetry.target
    assert comparable(journalled) == comparable(exported)
    assert journalled[0].resource.attributes[semconv.HOST_NAME]  # the header keeps the resource
    assert journal.load(path)[1] == []  # flushed: everything is behind the checkpoint
    assert path not in journal.orphans(tmp_path / "spool")  # a live process holds its journal


def test_a_torn_last_record_is_ignored(tmp_path: Path):
    spans = sdk_spans(3)
    j = journal.Journal(tmp_path, "store-a")
    assert all(j.append_readable(s) for s in spans)
    j.close(delete=False)
    with open(j.path, "ab") as fh:
        fh.write(b"\xff\x00\x00\x00partial")  # the process died in the middle of a write
    target, back = journal.load(j.path, from_checkpoint=False)
    assert target == "store-a" and [s.name for s in back] == ["s0", "s1", "s2"]
    assert comparable(back) == comparable(spans)


def test_the_checkpoint_follows_the_committed_prefix(tmp_path: Path):
    spans = sdk_spans(4)
    keys = [(s.context.trace_id, s.context.span_id) for s in spans]
    j = journal.Journal(tmp_path, "store-b")
    for s in spans:
        j.append_readable(s)
    j.commit([keys[1]])  # the second is stored, the first not yet: nothing can be skipped
    assert [s.name for s in journal.load(j.path)[1]] == ["s0", "s1", "s2", "s3"]
    j.commit([keys[0]])
    assert [s.name for s in journal.load(j.path)[1]] == ["s2", "s3"]
    assert j.pending == 2 and j.committed == 2
    j.close(delete=True)  # not all committed: the journal stays for a replay
    assert j.path.exists() and journal.orphans(tmp_path, "store-b") == [j.path]
    assert journal.orphans(tmp_path, "another-store") == []


def test_a_fully_committed_journal_is_deleted_at_close(tmp_path: Path):
    spans = sdk_spans(2)
    j = journal.Journal(tmp_path, "store-c")
    for s in spans:
        j.append_readable(s)
    assert journal.orphans(tmp_path, "store-c") == []  # locked while open
    j.commit([(s.context.trace_id, s.context.span_id) for s in spans])
    j.close(delete=True)
    assert not j.path.exists() and not j.checkpoint_path.exists()
    assert j.append_readable(spans[0]) is False  # closed: nothing written, nothing raised


def test_rows_of_t_output_are_journalled_as_values_and_read_back_whole(memory, tmp_path: Path):
    """The hot path journals a set's constant attributes once and each row's values only;
    read back, they are the spans that were exported (from the start, and from a checkpoint
    that lies past the constant part)."""
    import dlprov_otel

    with dlprov_otel.execution("hot-rows", dataflow="mnist"):
        params = {"optimizer_name": "adam", "learning_rate": 0.01, "num_epochs": 4, "num_layers": 2}
        with dlprov_otel.task("trainmodel", inputs={"itrainmodel": params}) as t:
            for epoch in range(4):
                t.output("otrainmodel", timestamp="", elapsed_time=0.5, loss=1.0 / (epoch + 1), accuracy=0.5,
                         val_loss=None, val_accuracy=0.25, epoch=epoch)
    exported = [s for s in memory.spans() if s.attributes.get(semconv.DATASET_TAG) == "otrainmodel"]
    assert len(exported) == 4
    (path,) = (journal.journal_root(tmp_path / "spool") / journal.target_key(memory.telemetry.target)).glob("*.jnl")
    kinds = [rec[0] for rec in journal.read_records(path)]
    outputs = tracing.lookup_dataflow("mnist").transformation("trainmodel").outputs
    assert kinds.count("r") == 4 and kinds.count("p") == len(outputs)  # a plan per output set, at task start
    _, back = journal.load(path, from_checkpoint=False)
    rows = [s for s in back if s.attributes.get(semconv.DATASET_TAG) == "otrainmodel"]
    assert comparable(rows) == comparable(exported)
    (epoch0,) = rows[0].attributes[semconv.data_key("epoch")]
    assert type(epoch0) is float and epoch0 == 0.0  # an int of a numeric attribute: a float
    # a checkpoint after the plan and the first two rows: the last two still read back whole
    offsets = [pos for pos, rec in journal._records_at(path) if rec[0] == "r"]
    path.with_suffix(".ckpt").write_text(str(offsets[2]))
    _, tail = journal.load(path)
    assert comparable([s for s in tail if s.name == "otrainmodel"]) == comparable(exported[2:])


def test_a_journal_left_open_reads_back_to_its_last_record(tmp_path: Path, caplog):
    """A process that dies leaves the space reserved ahead of its writer (zeros) after its last
    record, and maybe a record whose payload was copied but not yet its length: neither is read
    as a record, and no warning is logged. A closed journal ends at its last record."""
    spans = sdk_spans(3)
    j = journal.Journal(tmp_path, "store-d")
    assert all(j.append_readable(s) for s in spans)
    if j.mapped:
        assert j.path.stat().st_size > j.offset  # reserved ahead
        with open(j.path, "r+b") as fh:  # killed between a payload and its length
            fh.seek(j.offset + 4)
            fh.write(b"\xe9payload-without-its-length")
    target, back = journal.load(j.path, from_checkpoint=False)  # while open: as after SIGKILL
    assert target == "store-d" and comparable(back) == comparable(spans)
    assert not [r for r in caplog.records if "damaged" in r.getMessage()]
    end = j.offset
    j.close(delete=False)
    assert j.path.stat().st_size == end
    assert comparable(journal.load(j.path, from_checkpoint=False)[1]) == comparable(spans)


def test_a_journal_grows_past_its_reserved_space(tmp_path: Path):
    spans = sdk_spans(1)
    j = journal.Journal(tmp_path, "store-e")
    big = {semconv.KIND: semconv.KIND_TASK, "blob": "x" * 50_000}
    keys = []
    for i in range(40):  # ~2 MB: several steps of growth, records across their boundaries
        key = (spans[0].context.trace_id, i + 1)
        keys.append(key)
        assert j.append_span(*key, 0, f"s{i}", 1, 2, big)
    assert [s.name for s in journal.load(j.path)[1]] == [f"s{i}" for i in range(40)]
    j.commit(keys)
    assert journal.load(j.path)[1] == []
    j.close(delete=True)
    assert not j.path.exists()


def test_a_file_system_that_cannot_reserve_gets_plain_appends(tmp_path: Path, monkeypatch):
    def unsupported(fd, offset, length):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(journal.os, "posix_fallocate", unsupported, raising=False)
    spans = sdk_spans(3)
    j = journal.Journal(tmp_path, "store-f")
    assert j.mapped is False and j.row_sink() is None and j.error is None
    assert all(j.append_readable(s) for s in spans)
    assert j.path.stat().st_size == j.offset
    target, back = journal.load(j.path, from_checkpoint=False)
    assert target == "store-f" and comparable(back) == comparable(spans)
    j.close(delete=False)
