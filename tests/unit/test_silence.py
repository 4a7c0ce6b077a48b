"""The never-silent line of the integrations (``_shared.silence``): said once, at exit, for
a framework that was imported and instrumented but whose training was never recognised."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from dlprov_otel.integrations._shared import silence


@pytest.fixture(autouse=True)
def clean():
    saved = dict(silence._expected)
    silence._expected.clear()
    yield
    silence._expected.clear()
    silence._expected.update(saved)


def test_said_for_an_imported_framework_without_training(monkeypatch):
    monkeypatch.setitem(sys.modules, "fakeframework", object())
    silence.expect_training("fake", ("fakeframework",), "call log_epoch(...)")
    (line,) = silence.unrecognised()
    assert line.startswith("DLProv: fake was imported and instrumented, but no training was recognised")
    assert line.endswith("add the explicit API: call log_epoch(...)")


def test_not_said_once_seen_or_not_imported_or_stopped(monkeypatch):
    silence.expect_training("absent", ("no_such_module_here",), "x")
    assert silence.unrecognised() == []
    monkeypatch.setitem(sys.modules, "fakeframework", object())
    silence.expect_training("fake", ("fakeframework",), "x")
    silence.training_seen("fake")
    assert silence.unrecognised() == []
    silence.expect_training("fake2", ("fakeframework",), "x")
    silence.stop_expecting("fake2")
    assert silence.unrecognised() == []


def test_one_line_at_exit_and_quiet_turns_it_off():
    code = textwrap.dedent("""
        import sys
        from dlprov_otel.integrations._shared import silence
        sys.modules["fakeframework"] = object()
        silence.expect_training("fake", ("fakeframework",), "do this")
        silence.expect_training("fake", ("fakeframework",), "do this")  # instrumented twice: still one line
        silence.warn_unrecognised()  # said once, even if called again by atexit
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [ln for ln in proc.stderr.splitlines() if ln.startswith("DLProv:")] == [
        "DLProv: fake was imported and instrumented, but no training was recognised, so nothing was "
        "recorded for it; add the explicit API: do this"
    ]
    quiet = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "DLPROV_QUIET": "1"})
    assert quiet.returncode == 0 and "DLProv:" not in quiet.stderr
