"""A re-creation of the original DLProv capture path, for the overhead benchmark.

The original DLProv (dfa-lib-python + DfAnalyzer) made one blocking HTTP POST per
``Dataflow.save``, ``Task.begin``, ``Task.save`` and ``Task.end`` to a server process, which
wrote the call into MonetDB before answering. This module re-creates both ends with the
standard library, so the benchmark measures the pattern rather than Java start-up:

- the server (``python bench/original_pattern_server.py --store DIR --port P``): an HTTP
  server owning an embedded MonetDB (monetdbe). ``POST /pde/dataflow/json`` creates a
  schema per dataflow and a table per set; ``POST /pde/task/json`` upserts the task row and
  inserts the elements it carries into their set tables, commits, and only then answers.
- the client (:class:`DfaClient`): what a training script called; each call opens a new
  connection (``requests.post`` without a session did) and waits for the answer.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_SQL_TYPE = {"NUMERIC": "DOUBLE", "TEXT": "CLOB", "FILE": "CLOB"}


def _ident(name: str) -> str:
    """A validated, quoted SQL identifier (tags come from the client)."""
    name = name.lower()
    if not _NAME.match(name):
        raise ValueError(f"bad name {name!r}")
    return f'"{name}"'


class PatternStore:
    """The server's MonetDB: one connection, used from the serving thread only."""

    def __init__(self, path: Path) -> None:
        import monetdbe

        path.mkdir(parents=True, exist_ok=True)
        self.conn = monetdbe.connect(str(path))
        self.sets: dict[tuple[str, str], list[str]] = {}  # (dataflow, set) -> attribute names
        cur = self.conn.cursor()
        cur.execute(
            "CREATE TABLE IF NOT EXISTS pde_task (dataflow_tag VARCHAR(64), exec_tag VARCHAR(256), "
            "id INT, transformation_tag VARCHAR(64), status VARCHAR(16), "
            "start_time TIMESTAMP, end_time TIMESTAMP)"
        )
        self.conn.commit()

    def dataflow(self, doc: dict[str, Any]) -> None:
        schema = _ident(doc["tag"])
        cur = self.conn.cursor()
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        for tf in doc["transformations"]:
            for s in tf["sets"]:
                names = [a["name"].lower() for a in s["attributes"]]
                cols = ", ".join(f"{_ident(a['name'])} {_SQL_TYPE[a['type']]}" for a in s["attributes"])
                cur.execute(
                    f"CREATE TABLE IF NOT EXISTS {schema}.{_ident(s['tag'])} "
                    f"(task_id INT, exec_tag VARCHAR(256), {cols})"
                )
                self.sets[(doc["tag"].lower(), s["tag"].lower())] = names
        self.conn.commit()

    def task(self, doc: dict[str, Any]) -> None:
        df = doc["dataflow_tag"].lower()
        cur = self.conn.cursor()
        key = (df, doc["exec_tag"], int(doc["id"]))
        cur.execute("SELECT COUNT(*) FROM pde_task WHERE dataflow_tag = ? AND exec_tag = ? AND id = ?", key)
        if cur.fetchone()[0]:
            end = ", end_time = NOW()" if doc["status"] in ("FINISHED", "FAILED") else ""
            cur.execute(
                f"UPDATE pde_task SET status = ?{end} WHERE dataflow_tag = ? AND exec_tag = ? AND id = ?",
                (doc["status"], *key),
            )
        else:
            cur.execute(
                "INSERT INTO pde_task VALUES (?, ?, ?, ?, ?, NOW(), NULL)",
                (*key, doc["transformation_tag"], doc["status"]),
            )
        for s in doc.get("sets", []):
            names = self.sets[(df, s["tag"].lower())]
            marks = ", ".join("?" for _ in range(len(names) + 2))
            sql = f"INSERT INTO {_ident(df)}.{_ident(s['tag'])} VALUES ({marks})"
            for element in s["elements"]:
                if len(element) != len(names):
                    raise ValueError(f"set {s['tag']}: {len(element)} values for {len(names)} attributes")
                cur.execute(sql, (int(doc["id"]), doc["exec_tag"], *element))
        self.conn.commit()  # synchronously durable before the answer, as DfAnalyzer did

    def count(self, dataflow: str, set_tag: str, exec_tag: str) -> int:
        cur = self.conn.cursor()
        cur.execute(f"SELECT COUNT(*) FROM {_ident(dataflow)}.{_ident(set_tag)} WHERE exec_tag = ?", (exec_tag,))
        return int(cur.fetchone()[0])


def make_server(store: PatternStore, port: int) -> HTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, status: int, doc: Any) -> None:
            body = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._answer(200, {"ok": True})
            elif self.path.startswith("/count/"):
                _, _, df, set_tag, exec_tag = self.path.split("/", 4)
                self._answer(200, {"count": store.count(df, set_tag, exec_tag)})
            else:
                self._answer(404, {"error": "not found"})

        def do_POST(self) -> None:
            doc = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            try:
                if self.path == "/pde/dataflow/json":
                    store.dataflow(doc)
                elif self.path == "/pde/task/json":
                    store.task(doc)
                else:
                    self._answer(404, {"error": "not found"})
                    return
            except (KeyError, ValueError) as exc:
                self._answer(400, {"error": str(exc)})
                return
            self._answer(201, {"ok": True})

        def log_message(self, format: str, *args: Any) -> None:  # quiet: one line per call is noise
            pass

    # one thread: monetdbe binds its session to the thread that opened it
    return HTTPServer(("127.0.0.1", port), Handler)


class DfaClient:
    """The client side: one new connection and one blocking POST per call, like dfa-lib-python."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").rstrip("/").split(":")
        self.host, self.port = host, int(port)

    def _post(self, path: str, doc: dict[str, Any]) -> None:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            body = json.dumps(doc).encode()
            conn.request("POST", path, body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status >= 300:
                raise RuntimeError(f"POST {path}: {resp.status} {data!r}")
        finally:
            conn.close()

    def save_dataflow(self, tag: str, transformations: list[dict[str, Any]]) -> None:
        self._post("/pde/dataflow/json", {"tag": tag, "transformations": transformations})

    def task(self, dataflow: str, exec_tag: str, task_id: int, transformation: str, status: str,
             sets: dict[str, list[list[Any]]] | None = None) -> None:  # fmt: skip
        """One Task.begin/save/end: the task's status and the datasets added since the last call."""
        self._post(
            "/pde/task/json",
            {
                "dataflow_tag": dataflow,
                "exec_tag": exec_tag,
                "id": task_id,
                "transformation_tag": transformation,
                "status": status,
                "sets": [{"tag": tag, "elements": els} for tag, els in (sets or {}).items()],
            },
        )


# The training dataflow of the original MNIST example (trainmodel only: what a fit records).
TRAIN_DATAFLOW = [
    {
        "tag": "trainmodel",
        "sets": [
            {
                "tag": "itrainmodel",
                "type": "INPUT",
                "attributes": [
                    {"name": "optimizer_name", "type": "TEXT"},
                    {"name": "learning_rate", "type": "NUMERIC"},
                    {"name": "num_epochs", "type": "NUMERIC"},
                    {"name": "num_layers", "type": "NUMERIC"},
                ],
            },
            {
                "tag": "otrainmodel",
                "type": "OUTPUT",
                "attributes": [
                    {"name": "timestamp", "type": "TEXT"},
                    {"name": "elapsed_time", "type": "NUMERIC"},
                    {"name": "loss", "type": "NUMERIC"},
                    {"name": "accuracy", "type": "NUMERIC"},
                    {"name": "val_loss", "type": "NUMERIC"},
                    {"name": "val_accuracy", "type": "NUMERIC"},
                    {"name": "epoch", "type": "NUMERIC"},
                ],
            },
        ],
    }
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", required=True, help="directory of the embedded MonetDB")
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    server = make_server(PatternStore(Path(args.store)), args.port)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print("ready", flush=True)
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
