"""A real local Neo4j Community server, resolved with Maven and run with plain ``java``.

The Maven project in ``neo4j/`` (``pom.xml`` plus ``org.dlprov.neo4j.Main``) depends on Neo4j
Community 5.26 (LTS, Java 17+) from Maven Central. :func:`build` compiles it once and writes the
dependency classpath to ``neo4j/target/classpath.txt``; :func:`start` launches
``java -cp ... org.dlprov.neo4j.Main`` detached, with Bolt on ``127.0.0.1:PORT`` and
authentication on (user ``neo4j``), and blocks until the server writes its READY line to a
pipe (or exits: the pipe's end of file), then logs in once with the ``neo4j`` driver.

Command line::

    python -m dlprov_otel.services.neo4j_local start [--port N] [--data DIR] [--password PW]
    python -m dlprov_otel.services.neo4j_local status
    python -m dlprov_otel.services.neo4j_local stop

``start`` prints ``NEO4J_URI=...``, ``NEO4J_USERNAME=...`` and ``NEO4J_PASSWORD=...`` lines and
leaves the server running; ``stop`` finds it through the state file ``neo4j/run/server.json``.

Environment: ``DLPROV_NEO4J_PROJECT`` (the Maven project folder; default ``neo4j/`` of the
checkout this package runs from, else an error naming the setting),
``DLPROV_NEO4J_START_TIMEOUT`` (seconds to wait for READY, default 600),
``DLPROV_NEO4J_JAVA`` (java executable; else ``$JAVA_HOME/bin/java``, else ``java``),
``DLPROV_NEO4J_HEAP`` (JVM ``-Xmx``, default ``1g``), ``DLPROV_NEO4J_JAVA_OPTS`` (extra JVM
options), ``MVN`` (Maven executable, default ``mvn``).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import select
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlprov_otel.config import free_port

from .checkout import checkout_folder
from .processes import HOST, pid_alive, port_open, tail, terminate

MAIN_CLASS = "org.dlprov.neo4j.Main"
DEFAULT_USER = "neo4j"
DEFAULT_PASSWORD = "dlprovdlprov"
STOP_GRACE_S = 30.0
# Generous: on a loaded 2-core machine the JVM and Neo4j take minutes to open Bolt.
START_TIMEOUT_S = float(os.environ.get("DLPROV_NEO4J_START_TIMEOUT") or 600)

# JVM options that Neo4j's own launcher passes (native file access, Netty, useful stack traces).
_JVM_OPTS = (
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+UnlockDiagnosticVMOptions",
    "-XX:+DebugNonSafepoints",
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--enable-native-access=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Djdk.attach.allowAttachSelf=true",
    "-Dfile.encoding=UTF-8",
)


def project_dir() -> Path:
    """The Maven project folder: ``$DLPROV_NEO4J_PROJECT``, else ``neo4j/`` of the checkout."""
    return checkout_folder("DLPROV_NEO4J_PROJECT", "neo4j", "pom.xml")


def run_dir() -> Path:
    """Folder for the default data directory and the state file (``neo4j/run``)."""
    return project_dir() / "run"


def default_state_file() -> Path:
    """The state file that ``start``/``stop``/``status`` use when none is given."""
    return run_dir() / "server.json"


@dataclass
class Neo4jServer:
    """A running local Neo4j server started by :func:`start`."""

    uri: str
    user: str
    password: str
    pid: int
    data_dir: Path
    log_path: Path
    state_file: Path | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)

    @property
    def port(self) -> int:
        """The Bolt port."""
        return int(self.uri.rsplit(":", 1)[1])

    @property
    def auth(self) -> tuple[str, str]:
        """``(user, password)`` for ``neo4j.GraphDatabase.driver(uri, auth=...)``."""
        return (self.user, self.password)

    def env(self) -> dict[str, str]:
        """``NEO4J_URI``/``NEO4J_USERNAME``/``NEO4J_PASSWORD`` for this server."""
        return {"NEO4J_URI": self.uri, "NEO4J_USERNAME": self.user, "NEO4J_PASSWORD": self.password}

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``grace`` seconds) and drop its state."""
        _terminate(self.pid, grace, self._proc)
        if self.state_file is not None:
            _remove_state(self.state_file, self.pid)


# --------------------------------------------------------------------------- build


def _mvn() -> str:
    mvn = os.environ.get("MVN") or shutil.which("mvn")
    if not mvn:
        raise RuntimeError("Maven ('mvn') is needed to resolve Neo4j from Maven Central")
    return mvn


def _java() -> str:
    java = os.environ.get("DLPROV_NEO4J_JAVA")
    if not java and os.environ.get("JAVA_HOME"):
        candidate = Path(os.environ["JAVA_HOME"]) / "bin" / "java"
        java = str(candidate) if candidate.exists() else None
    java = java or shutil.which("java")
    if not java:
        raise RuntimeError("Java 17+ ('java') is needed to run Neo4j")
    return java


def _classpath_file() -> Path:
    return project_dir() / "target" / "classpath.txt"


def _main_class_file() -> Path:
    return project_dir() / "target" / "classes" / (MAIN_CLASS.replace(".", "/") + ".class")


def _stamp_file() -> Path:
    return project_dir() / "target" / ".dlprov-built"


def _is_built() -> bool:
    proj = project_dir()
    outputs = [_classpath_file(), _main_class_file(), _stamp_file()]
    if not all(p.exists() for p in outputs):
        return False
    sources = [proj / "pom.xml", *(proj / "src").rglob("*.java")]
    # Maven leaves unchanged outputs untouched, so a stamp written after each build is compared.
    if _stamp_file().stat().st_mtime < max(p.stat().st_mtime for p in sources):
        return False
    # The jars named in the classpath must still be in the local Maven repository.
    return all(Path(j).exists() for j in _classpath_file().read_text().strip().split(os.pathsep))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build(quiet: bool = True) -> Path:
    """Resolve Neo4j with Maven and compile the launcher once; return the classpath file.

    Skipped when the last successful build is newer than ``pom.xml`` and the Java sources.
    The first run downloads Neo4j's jars into ``~/.m2``.
    """
    proj = project_dir()
    if not (proj / "pom.xml").exists():
        raise RuntimeError(f"no Maven project at {proj} (set DLPROV_NEO4J_PROJECT)")
    with _locked(proj / "target" / ".build.lock"):
        if _is_built():
            return _classpath_file()
        cmd = [_mvn(), "-B", "-f", str(proj / "pom.xml"), "compile"]
        if quiet:
            cmd.insert(2, "-q")
        res = subprocess.run(
            cmd,
            cwd=proj,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if quiet else None,
            stderr=subprocess.STDOUT if quiet else None,
            check=False,
        )
        if res.returncode == 0 and _classpath_file().exists() and _main_class_file().exists():
            _stamp_file().touch()
        if res.returncode != 0 or not _is_built():
            out = res.stdout.decode(errors="replace")[-4000:] if res.stdout else ""
            raise RuntimeError(f"Maven build of {proj} failed (exit {res.returncode})\n{out}")
    return _classpath_file()


# --------------------------------------------------------------------------- processes


def _is_our_server(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return pid_alive(pid)  # no /proc: trust the state file
    return MAIN_CLASS.encode() in cmdline


def _terminate(pid: int, grace: float, proc: subprocess.Popen[bytes] | None = None) -> bool:
    """Stop our server ``pid`` (SIGTERM, SIGKILL after ``grace`` s); True if it was running."""
    if proc is not None and proc.poll() is not None:
        return False
    if proc is None and not (pid_alive(pid) and _is_our_server(pid)):
        return False
    terminate(pid, grace, proc)
    return True


# --------------------------------------------------------------------------- state file


def _write_state(state_file: Path, server: Neo4jServer) -> None:
    data = {
        "pid": server.pid,
        "uri": server.uri,
        "port": server.port,
        "user": server.user,
        "password": server.password,
        "data_dir": str(server.data_dir),
        "log_path": str(server.log_path),
    }
    state_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = state_file.with_name(state_file.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
    tmp.replace(state_file)


def _read_state(state_file: Path) -> Neo4jServer | None:
    try:
        data: dict[str, Any] = json.loads(state_file.read_text())
        return Neo4jServer(
            uri=data["uri"],
            user=data["user"],
            password=data["password"],
            pid=int(data["pid"]),
            data_dir=Path(data["data_dir"]),
            log_path=Path(data["log_path"]),
            state_file=state_file,
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _remove_state(state_file: Path, pid: int) -> None:
    server = _read_state(state_file)
    if server is None or server.pid == pid:
        with contextlib.suppress(FileNotFoundError):
            state_file.unlink()


# --------------------------------------------------------------------------- API


def _connects(uri: str, auth: tuple[str, str]) -> bool:
    """Whether the driver logs in (a generous timeout: the server said it is ready)."""
    from neo4j import GraphDatabase

    try:
        with GraphDatabase.driver(uri, auth=auth, connection_timeout=60) as driver:
            driver.verify_connectivity()
        return True
    except Exception:
        return False


def _check_driver() -> None:
    try:
        from neo4j import GraphDatabase  # noqa: F401
    except ImportError as exc:  # also when only the repo's neo4j/ folder is found
        raise RuntimeError(
            "the neo4j Python driver is needed: pip install 'dlprov-otel[neo4j]'"
        ) from exc


def start(
    port: int | None = None,
    data_dir: str | Path | None = None,
    password: str = DEFAULT_PASSWORD,
    timeout: float = START_TIMEOUT_S,
    *,
    state_file: str | Path | None = None,
) -> Neo4jServer:
    """Start a detached Neo4j server on ``127.0.0.1:port`` and wait until Bolt answers.

    ``port`` defaults to a free port, ``data_dir`` to ``neo4j/run/data`` (kept between runs).
    The state file (default ``neo4j/run/server.json``) lets :func:`stop` find the server.
    Raises RuntimeError (with the tail of the server log) if it exits or is not ready in time.
    """
    _check_driver()
    if len(password) < 8:
        raise ValueError("Neo4j needs a password of at least 8 characters")
    state = Path(state_file) if state_file else default_state_file()
    running = _read_state(state)
    if running is not None and pid_alive(running.pid) and _is_our_server(running.pid):
        raise RuntimeError(f"a Neo4j server is already running at {running.uri} (see {state})")
    classpath_file = build()
    classes = project_dir() / "target" / "classes"
    classpath = os.pathsep.join([str(classes), classpath_file.read_text().strip()])
    data = Path(data_dir) if data_dir else run_dir() / "data"
    data = data.resolve()
    (data / "logs").mkdir(parents=True, exist_ok=True)
    log_path = data / "logs" / "console.log"

    chosen = port if port is not None else free_port()
    if port_open(chosen):
        raise RuntimeError(f"port {chosen} on {HOST} is already in use")
    heap = os.environ.get("DLPROV_NEO4J_HEAP", "1g")
    cmd = [
        _java(),
        f"-Xmx{heap}",
        *_JVM_OPTS,
        *shlex.split(os.environ.get("DLPROV_NEO4J_JAVA_OPTS", "")),
        "-cp",
        classpath,
        MAIN_CLASS,
        "--host",
        HOST,
        "--port",
        str(chosen),
        "--data",
        str(data),
    ]
    env = {**os.environ, "NEO4J_PASSWORD": password}
    ready_r, ready_w = os.pipe()  # the server writes its READY line here once Bolt answers
    try:
        with log_path.open("ab") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting on port {chosen}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                [*cmd, "--ready-fd", str(ready_w)],
                cwd=data,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(ready_w,),
                start_new_session=True,  # detached: survives the Python process and its Ctrl-C
            )
    finally:
        os.close(ready_w)  # only the server holds the write end: its exit is an end of file here
    uri = f"bolt://{HOST}:{chosen}"
    server = Neo4jServer(uri, DEFAULT_USER, password, proc.pid, data, log_path, state, proc)
    try:
        _wait_ready(server, ready_r, timeout)
        _write_state(state, server)
    except BaseException:
        _terminate(proc.pid, 10.0, proc)
        raise
    finally:
        os.close(ready_r)
    return server


def _wait_ready(server: Neo4jServer, ready_fd: int, timeout: float) -> None:
    """Block until the server's READY line arrives on ``ready_fd`` (or it exits, or ``timeout`` passes)."""
    deadline = time.monotonic() + timeout
    line = b""
    while b"\n" not in line:
        remaining = deadline - time.monotonic()
        readable = select.select([ready_fd], [], [], max(0.0, remaining))[0] if remaining > 0 else []
        if not readable:
            raise RuntimeError(
                f"Neo4j did not accept Bolt connections on {server.uri} within {timeout:.0f} s "
                f"(DLPROV_NEO4J_START_TIMEOUT); {server.log_path}:\n" + tail(server.log_path)
            )
        chunk = os.read(ready_fd, 1024)
        if not chunk:  # the server exited before it was ready
            code = server._proc.wait(30) if server._proc is not None else "?"
            raise RuntimeError(
                f"Neo4j exited with code {code} during start; {server.log_path}:\n" + tail(server.log_path)
            )
        line += chunk
    if not line.startswith(f"READY {server.uri}".encode()) or not _connects(server.uri, server.auth):
        raise RuntimeError(
            f"Neo4j said {line.strip().decode(errors='replace')!r} but {server.uri} does not accept "
            f"{server.user}'s login; {server.log_path}:\n" + tail(server.log_path)
        )


def stop(state_file: str | Path | None = None, grace: float = STOP_GRACE_S) -> bool:
    """Stop the server recorded in ``state_file``; True if one was running."""
    state = Path(state_file) if state_file else default_state_file()
    server = _read_state(state)
    if server is None:
        return False
    was_running = _terminate(server.pid, grace)
    _remove_state(state, server.pid)
    return was_running


def status(state_file: str | Path | None = None) -> Neo4jServer | None:
    """The server recorded in ``state_file`` if its process is alive and its port open."""
    state = Path(state_file) if state_file else default_state_file()
    server = _read_state(state)
    if server is None or not (pid_alive(server.pid) and _is_our_server(server.pid)):
        return None
    return server if port_open(server.port) else None


# --------------------------------------------------------------------------- CLI


def _print_env(server: Neo4jServer) -> None:
    for key, value in server.env().items():
        print(f"{key}={value}")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``start``, ``stop``, ``status`` and ``build``."""
    parser = argparse.ArgumentParser(
        prog="python -m dlprov_otel.services.neo4j_local",
        description="Run a local Neo4j Community server (resolved with Maven) for dlprov-otel.",
    )
    parser.add_argument("--state", type=Path, default=None, help="state file (neo4j/run/...)")
    sub = parser.add_subparsers(dest="command", required=True)
    p_start = sub.add_parser("start", help="start in the background, print NEO4J_* lines")
    p_start.add_argument("--port", type=int, default=None, help="Bolt port (default: free)")
    p_start.add_argument("--data", type=Path, default=None, help="data dir (neo4j/run/data)")
    p_start.add_argument("--password", default=os.environ.get("NEO4J_PASSWORD", DEFAULT_PASSWORD))
    p_start.add_argument("--timeout", type=float, default=START_TIMEOUT_S,
                         help=f"seconds to wait for Bolt (default {START_TIMEOUT_S:.0f}; $DLPROV_NEO4J_START_TIMEOUT)")
    sub.add_parser("stop", help="stop the server started by 'start'")
    sub.add_parser("status", help="print NEO4J_* lines if running (exit 3 if not)")
    sub.add_parser("build", help="resolve Neo4j with Maven and compile the launcher")
    args = parser.parse_args(argv)

    try:
        if args.command == "build":
            print(build(quiet=False))
        elif args.command == "start":
            running = status(args.state)
            if running is not None:
                print(f"already running (pid {running.pid})", file=sys.stderr)
                server = running
            else:
                server = start(
                    args.port, args.data, args.password, args.timeout, state_file=args.state
                )
            _print_env(server)
        elif args.command == "stop":
            stopped = stop(args.state)
            print("stopped" if stopped else "not running", file=sys.stderr)
        else:
            server = status(args.state)
            if server is None:
                print("not running", file=sys.stderr)
                return 3
            _print_env(server)
            print(
                f"pid {server.pid}, data {server.data_dir}, log {server.log_path}", file=sys.stderr
            )
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
