"""Tools of the chaos test (``scripts/chaos.py``) and of the fault tests in tests/integration/.

Real processes only: a training-like script (:class:`Trainer`; after each recording call
returned it appends the epoch to an unbuffered file), a process that holds an embedded store
(:func:`hold_store`), the next DLProv process that talks to an endpoint
(:func:`next_process_for_endpoint`), tmpfs mounts (:func:`tmpfs`, :func:`fill`; root only),
a MonetDB server (:func:`monetdb`, through ``scripts/monetdb.sh``), and :func:`count`: emitted
vs stored, counted by a new ``dlprov sql`` process.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUN = "chaos"
WAIT = 300.0  # generous deadlines: the machine may be loaded

# A user's loop: epochs recorded with the Pythonic API until a limit or a stop file.
TRAINER = r"""
import os, sys, time
import dlprov_otel

target, out, limit = sys.argv[1], sys.argv[2], int(sys.argv[3])
stop = os.environ.get("CHAOS_STOP") or None
pause = float(os.environ.get("CHAOS_SLEEP", "0.01"))
if target.startswith(("http://", "https://")):
    dlprov_otel.configure(endpoint=target)
else:
    dlprov_otel.configure(store=target)
fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
with dlprov_otel.execution(os.environ.get("CHAOS_RUN", "chaos"), dataflow="mnist"):
    with dlprov_otel.task("trainmodel", inputs={"itrainmodel": {"optimizer_name": "sgd", "learning_rate": 0.1,
                                                                "num_epochs": limit, "num_layers": 2}}) as t:
        epoch = 0
        while (limit <= 0 or epoch < limit) and not (stop and os.path.exists(stop)):
            t.output("otrainmodel", timestamp=time.strftime("%H:%M:%S"), elapsed_time=0.01, loss=1.0 / (epoch + 1),
                     accuracy=0.5, val_loss=None, val_accuracy=None, epoch=epoch)
            os.write(fd, b"%d\n" % epoch)
            epoch += 1
            time.sleep(pause)
print("done", dlprov_otel.stats(), flush=True)
"""

# Holds the embedded store (MonetDB admits one process) until the flag file goes.
HOLDER = r"""
import sys, time
from pathlib import Path
from dlprov_otel.store import open_store
store = open_store(sys.argv[1])
Path(sys.argv[2]).write_text("held")
while Path(sys.argv[2]).exists():
    time.sleep(0.05)
store.close()
"""

# The next DLProv process that talks to an endpoint: it stores what dead processes journalled
# for it, by itself (no command); it waits until their journals are gone.
NEXT_PROCESS = r"""
import sys, time
from pathlib import Path
import dlprov_otel
from dlprov_otel import journal

endpoint, spool, patience = sys.argv[1], sys.argv[2], float(sys.argv[3])
own = Path(dlprov_otel.configure(endpoint=endpoint).stats()["journal"] or "")
directory = journal.journal_root(spool) / journal.target_key(endpoint)
deadline = time.monotonic() + patience
def left():
    return [p for p in directory.glob("*.jnl") if p != own]
while left() and time.monotonic() < deadline:
    time.sleep(0.1)
print("journals left:", len(left()), flush=True)
"""


# --- processes -------------------------------------------------------------------------------
def python_env(spool: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env["DLPROV_SPOOL_DIR"] = str(spool)
    for name in ("DLPROV_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                 "DLPROV_STORE"):
        env.pop(name, None)
    return env


def _script(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    if not path.exists():
        path.write_text(text)
    return path


def wait_until(predicate, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` s or when ``proc`` died."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited first (status {proc.returncode})")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.05)


@dataclass
class Trainer:
    """The training-like script in its own process."""

    directory: Path
    target: str
    env: dict[str, str]
    limit: int = 0
    pause: float = 0.01
    name: str = "trainer"
    run: str = RUN  # the execution tag
    proc: subprocess.Popen | None = None

    @property
    def out(self) -> Path:
        return self.directory / f"{self.name}.returned"

    @property
    def stop_file(self) -> Path:
        return self.directory / f"{self.name}.stop"

    @property
    def log(self) -> Path:
        return self.directory / f"{self.name}.log"

    def start(self) -> Trainer:
        self.directory.mkdir(parents=True, exist_ok=True)
        script = _script(self.directory, "trainer.py", TRAINER)
        env = {**self.env, "CHAOS_STOP": str(self.stop_file), "CHAOS_SLEEP": str(self.pause), "CHAOS_RUN": self.run}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(script), self.target, str(self.out), str(self.limit)],
                env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.directory,
            )
        return self

    def returned(self) -> int:
        """Emissions whose recording call returned."""
        try:
            return self.out.read_bytes().count(b"\n")
        except FileNotFoundError:
            return 0

    def wait_returned(self, n: int, timeout: float = WAIT) -> int:
        wait_until(lambda: self.returned() >= n, timeout, f"{self.name}: {n} epochs returned", self.proc)
        return self.returned()

    def stop(self, timeout: float = WAIT) -> int:
        """Ask the loop to end (a normal end) and wait for the exit status."""
        self.stop_file.write_text("stop")
        return self.wait(timeout)

    def signal(self, signum: int, timeout: float = WAIT) -> int:
        assert self.proc is not None
        self.proc.send_signal(signum)
        return self.wait(timeout)

    def wait(self, timeout: float = WAIT) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(60)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def run_sql(
    env: dict[str, str], sql: str, *, store: Path | str | None = None, endpoint: str | None = None
) -> list[list[str]]:
    """Rows of one query, through a new process (``dlprov sql``, which stores first what dead
    processes journalled for that store). A missing schema (nothing stored at all) is no rows."""
    where = ["--store", str(store)] if store is not None else ["--endpoint", str(endpoint)]
    res = subprocess.run(
        [sys.executable, "-m", "dlprov_otel.cli", "sql", *where, "--format", "csv", sql],
        env=env, capture_output=True, text=True, timeout=WAIT, cwd=ROOT,
    )
    if res.returncode != 0:
        if "missing" in res.stderr.lower() or "no such" in res.stderr.lower():
            return []
        raise RuntimeError(f"dlprov sql failed ({res.returncode}): {res.stderr[-1500:]}")
    return [row for row in csv.reader(io.StringIO(res.stdout))][1:]


@dataclass
class Count:
    emitted: int  # recording calls that returned
    stored: int  # of those, stored
    rows: int  # all rows of the run
    distinct: int  # distinct epochs stored (may be one more than emitted: the call in flight)
    status: str

    @property
    def lost(self) -> int:
        return self.emitted - self.stored

    @property
    def duplicated(self) -> int:
        return self.rows - self.distinct

    @property
    def in_flight(self) -> int:
        return self.distinct - self.stored


def count(env: dict[str, str], emitted: int, *, store: Path | str | None = None, endpoint: str | None = None,
          run: str = RUN) -> Count:
    """Emitted vs stored for one run, counted by a new process."""
    runs = f"FROM \"mnist\".otrainmodel WHERE execution_tag = '{run}'"
    rows = run_sql(
        env,
        f"SELECT count(*), count(DISTINCT epoch), count(DISTINCT CASE WHEN epoch < {emitted} THEN epoch END) {runs}",
        store=store, endpoint=endpoint,
    )
    total, distinct, stored = (int(v) for v in rows[0]) if rows else (0, 0, 0)
    status = run_sql(env, f"SELECT status FROM dataflow_execution WHERE tag = '{run}'", store=store, endpoint=endpoint)
    return Count(emitted, stored, total, distinct, status[0][0] if status else "-")


def journals(spool: Path) -> list[Path]:
    return sorted(spool.glob("journal/*/*.jnl"))


def next_process_for_endpoint(env: dict[str, str], directory: Path, endpoint: str, spool: Path) -> int:
    """Run the next DLProv process that talks to ``endpoint``; returns the journals it left."""
    script = _script(directory, "next_process.py", NEXT_PROCESS)
    res = subprocess.run(
        [sys.executable, str(script), endpoint, str(spool), str(WAIT)],
        env=env, capture_output=True, text=True, timeout=WAIT + 120, cwd=directory,
    )
    if res.returncode != 0 or "journals left:" not in res.stdout:
        raise RuntimeError(f"the next process failed ({res.returncode}): {res.stderr[-1500:]}")
    return int(res.stdout.rsplit("journals left:", 1)[1].split()[0])


@contextlib.contextmanager
def hold_store(directory: Path, env: dict[str, str], store: Path) -> Iterator[Path]:
    """Another process holds the embedded store while the block runs (or until the yielded
    flag file is removed)."""
    flag = directory / "held.flag"
    script = _script(directory, "holder.py", HOLDER)
    holder = subprocess.Popen(
        [sys.executable, str(script), str(store), str(flag)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=directory,
    )
    try:
        wait_until(flag.exists, WAIT, "the store holder", holder)
        yield flag
    finally:
        flag.unlink(missing_ok=True)
        try:
            holder.communicate(timeout=WAIT)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.communicate()


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` at ``path`` (root only), unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True,
                   capture_output=True, text=True)
    try:
        yield path
    finally:
        for _ in range(50):
            if subprocess.run(["umount", str(path)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)  # a child that has not quite exited may still hold a file
        else:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)


def tmpfs_available() -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    probe = Path(tempfile.mkdtemp(prefix="dlprov-chaos-probe-"))
    try:
        with tmpfs(probe, "64k"):
            return True
    except (subprocess.CalledProcessError, OSError):
        return False
    finally:
        with contextlib.suppress(OSError):
            probe.rmdir()


def fill(directory: Path) -> Path:
    """Fill the filesystem of ``directory`` to the last byte; returns the filler file."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (1 << 16, 4096, 512, 1):  # big writes, then the last partial blocks
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    return filler



def monetdb(env: dict[str, str], command: str) -> str:
    res = subprocess.run([str(ROOT / "scripts" / "monetdb.sh"), command], env=env, capture_output=True, text=True,
                         timeout=3600, cwd=ROOT)
    if res.returncode != 0:
        raise RuntimeError(f"scripts/monetdb.sh {command} failed: {res.stderr[-1500:]}")
    return res.stdout.strip()


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
