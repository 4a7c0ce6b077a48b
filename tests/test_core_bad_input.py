"""Store problems get one clear message and never reach training (bad API input: tests/unit)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

import dlprov_otel
from dlprov_otel import (
    Dataflow,
    DataSet,
    Element,
    StoreError,
    StoreLockedError,
    StoreURLError,
    Task,
)
from dlprov_otel.store import open_store


@pytest.fixture
def dlprov(dlprov_both):
    """These tests run on both backends: embedded MonetDB and a MonetDB server."""
    return dlprov_both

@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://localhost:4318", r"unknown store URL scheme 'http'"),
        ("postgres://u:p@h/db", r"unknown store URL scheme 'postgres'"),
        ("monetdb://host-only", r"expected monetdb://user:password@host:port/database"),
        ("monetdb://u:p@h:notaport/db", r"the port is not a number"),
    ],
)
def test_store_url_errors(url, message):
    with pytest.raises(StoreURLError, match=message):
        open_store(url)


def test_unreachable_monetdb_server():
    t0 = time.monotonic()
    with pytest.raises(StoreError, match=r"cannot reach MonetDB server monetdb://monetdb@127\.0\.0\.1:1/dlprov"):
        open_store("monetdb://monetdb:secret@127.0.0.1:1/dlprov")
    assert time.monotonic() - t0 < 30


def test_locked_embedded_store(tmp_path, subprocess_env):
    path = tmp_path / "locked"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from dlprov_otel.store import open_store; open_store({str(path)!r}); "
            "print('open', flush=True); import time; time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=subprocess_env,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreLockedError, match=r"is in use by another process .* `dlprov collector serve`"):
            open_store(path)
    finally:
        holder.kill()
        holder.wait()


def test_store_failure_never_raises_into_training(dlprov, caplog):
    """A store that breaks mid-training: training goes on, one error is logged, spans are kept."""
    Dataflow("mnist", predefined=True).save()
    backend = dlprov.store.backend
    real_append = backend.append

    def broken(*args, **kwargs):
        raise OSError("disk full")

    backend.append = broken
    t = Task(1, "mnist", "run-broken", "trainmodel")
    t.begin()
    for epoch in range(20):
        t.add_dataset(DataSet("otrainmodel", [Element(["ts", 1.0, 0.5, 0.5, None, None, epoch])]))
        t.save()
    t.end()
    deadline = time.monotonic() + 30  # the export thread gets to it in the background
    while dlprov.stats()["export_failures"] < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    stats = dlprov.stats()
    assert stats["export_failures"] >= 1 and stats["dropped"] == 0
    assert stats["exported"] < stats["queued"]  # kept, not lost
    errors = [r for r in caplog.records if "cannot store provenance" in r.getMessage()]
    assert len(errors) == 1 and "disk full" in errors[0].getMessage()
    backend.append = real_append  # the store comes back: everything kept is written
    assert dlprov.flush(timeout=30), dlprov.processor.exporter.last_error
    assert dlprov.store.query('SELECT COUNT(*) FROM "mnist"."otrainmodel"').rows == [(20,)]


@pytest.mark.parametrize("journal", [True, False], ids=["journal", "no-journal"])
def test_spans_left_at_exit_are_kept_and_replayed(tmp_path, subprocess_env, journal):
    """When the store never comes back, the spans stay in the journal (or, with
    DLPROV_JOURNAL=0, go to a spool file); `dlprov replay` stores them and removes what it stored."""
    spool = tmp_path / "spool"
    store = tmp_path / "store"
    if not journal:
        subprocess_env = {**subprocess_env, "DLPROV_JOURNAL": "0"}
    script = textwrap.dedent(
        f"""
        import dlprov_otel
        from dlprov_otel import Dataflow, Task, DataSet, Element
        tel = dlprov_otel.configure(store={str(store)!r}, spool_dir={str(spool)!r})
        tel.processor.shutdown_timeout = 1.0
        def broken(*a, **k):
            raise OSError("store gone")
        tel.store.backend.append = broken
        Dataflow("mnist", predefined=True).save()
        t = Task(1, "mnist", "run-spooled", "testmodel")
        t.add_dataset(DataSet("otestmodel", [Element([0.25, 0.75])]))
        t.end()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=subprocess_env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "dlprov replay" in done.stderr
    journals = lambda: list((spool / "journal").rglob("*.jnl"))  # noqa: E731
    files = list(spool.glob("*.otlp.pb"))
    if journal:
        assert "the journal keeps them" in done.stderr
        assert journals() and not files
    else:
        assert "saved to" in done.stderr
        assert files and not journals()
    replay = subprocess.run(
        [sys.executable, "-m", "dlprov_otel.cli", "replay", "--store", str(store), "--spool-dir", str(spool)],
        env=subprocess_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert replay.returncode == 0, replay.stderr
    assert ("replayed 1 journal(s)" if journal else "replayed 1 spool file(s)") in replay.stdout
    s = open_store(store)
    try:
        assert s.query('SELECT loss, accuracy FROM "mnist"."otestmodel"').rows == [(0.25, 0.75)]
        assert s.query("SELECT status FROM dataflow_execution").rows == [("FINISHED",)]
    finally:
        s.close()
    assert not list(spool.glob("*.otlp.pb")) and not journals()


def test_configure_errors_are_clear():
    with pytest.raises(StoreURLError):
        dlprov_otel.configure(store="ftp://nowhere")


def test_store_locked_at_start_then_released_loses_nothing(tmp_path, subprocess_env, caplog):
    """configure() does not wait for the store: a locked one is reported once, and the spans
    recorded meanwhile are stored once the other process lets it go."""
    path = tmp_path / "busy"
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from dlprov_otel.store import open_store; open_store({str(path)!r}); "
         "print('open', flush=True); import sys; sys.stdin.readline()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=subprocess_env,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "open"
        tel = dlprov_otel.configure(store=path, spool_dir=tmp_path / "spool", schedule_delay=0.05)
        Dataflow("mnist", predefined=True).save()
        t = Task(1, "mnist", "run-busy", "testmodel")
        t.add_dataset(DataSet("otestmodel", [Element([0.5, 0.5])]))
        t.end()  # training goes on: nothing raised
        deadline = time.monotonic() + 30
        while tel.stats()["export_failures"] < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert any("in use by another process" in r.getMessage() for r in caplog.records)
    finally:
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(30)
    assert tel.flush(60)
    assert tel.store.query('SELECT loss FROM "mnist"."otestmodel"').rows == [(0.5,)]
    dlprov_otel.shutdown()
