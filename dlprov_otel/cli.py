"""The ``dlprov`` command line.

Core commands live here (``sql``, ``executions``, ``replay``); feature modules add theirs
through ``add_commands(subparsers)``: the core's own in :data:`PLUGINS`, the other
distributions' (``dlprov demo`` from dlprov-otel-integrations, ``dlprov collector`` from
dlprov-otel-collector) through the ``dlprov_otel.commands`` entry point group.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import importlib
import json
import math
import sys
from collections.abc import Sequence
from typing import Any

from .errors import DLProvError

# plugin module -> (its command, what to install for its dependencies)
PLUGINS = {
    "dlprov_otel.prov.cli": ("prov", "dlprov-otel"),
    "dlprov_otel.neo4j_loader": ("neo4j", "dlprov-otel[neo4j]"),
    "dlprov_otel.ui.cli": ("ui", "dlprov-otel"),
    "dlprov_otel.lineage_cli": ("lineage", "dlprov-otel"),
}
# commands that other distributions add, and what to install when they are missing
OPTIONAL_COMMANDS = {
    "demo": "dlprov-otel-integrations[keras]",
    "collector": "dlprov-otel-collector",
}
ENTRY_POINT_GROUP = "dlprov_otel.commands"


def _plugins() -> dict[str, tuple[str, str]]:
    """Core plugins plus those registered by installed distributions (module -> command, install)."""
    from importlib.metadata import entry_points

    found = dict(PLUGINS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.value, (ep.name, OPTIONAL_COMMANDS.get(ep.name, ep.dist.name if ep.dist else "")))
    return found


def split_statements(text: str) -> list[str]:
    """Split SQL text on semicolons outside quotes and comments."""
    out: list[str] = []
    buf: list[str] = []
    i, n = 0, len(text)
    quote: str | None = None
    while i < n:
        c = text[i]
        if quote:
            buf.append(c)
            if c == quote:
                if i + 1 < n and text[i + 1] == quote:  # doubled quote inside a literal
                    buf.append(text[i + 1])
                    i += 1
                else:
                    quote = None
        elif c in ("'", '"'):
            quote = c
            buf.append(c)
        elif c == "-" and text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif c == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
            continue
        elif c == ";":
            stmt = "".join(buf).strip()
            if stmt:
                out.append(stmt)
            buf = []
        else:
            buf.append(c)
        i += 1
    stmt = "".join(buf).strip()
    if stmt:
        out.append(stmt)
    return out


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "NULL"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ")
    return str(v)


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, dt.datetime | dt.date):
        return v.isoformat()
    return v


def print_result(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str = "table", out: Any = None) -> None:
    """Print a result as an aligned table, CSV or JSON."""
    out = out or sys.stdout
    if fmt == "json":
        json.dump([{c: _jsonable(v) for c, v in zip(columns, r, strict=False)} for r in rows], out, indent=2)
        out.write("\n")
        return
    if fmt == "csv":
        w = csv.writer(out)
        w.writerow(columns)
        for r in rows:
            w.writerow(["" if v is None or (isinstance(v, float) and math.isnan(v)) else _jsonable(v) for v in r])
        return
    cells = [[_cell(v) for v in r] for r in rows]
    cells = [[c if len(c) <= 60 else c[:57] + "..." for c in r] for r in cells]
    widths = [len(c) for c in columns]
    for r in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, r, strict=False)]
    line = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    out.write(line + "\n")
    out.write("| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=False)) + " |\n")
    out.write(line + "\n")
    for r in cells:
        out.write("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + " |\n")
    out.write(line + "\n")
    out.write(f"{len(rows)} row{'s' if len(rows) != 1 else ''}\n")


def _cmd_sql(args: argparse.Namespace) -> int:
    statements = split_statements(" ; ".join(args.sql))
    if not statements:
        raise DLProvError("no SQL statement given")
    if args.endpoint:
        from .client import query

        columns, rows = query(args.endpoint, "; ".join(statements), token=args.token)
    else:
        if not args.write:
            # read-only, as through the collector: reads only, and none of MonetDB's system
            # objects (one of them, sys.sessions, crashes embedded MonetDB)
            from .http.sqlguard import check_read_only

            statements = check_read_only("; ".join(statements))
        store = open_and_replay(args.store)
        result = store.run_script(statements, read_only=not args.write)
        columns, rows = result.columns, result.rows
    if columns:
        print_result(columns, rows, args.format)
    else:
        print("OK")
    return 0


def _cmd_executions(args: argparse.Namespace) -> int:
    if args.endpoint:
        from .client import executions

        columns, rows = executions(args.endpoint, token=args.token)
        print_result(columns, rows, args.format)
        return 0
    from .store import readmodel

    store = open_and_replay(args.store)
    rows = [
        (*e.as_dict().values(), sum(readmodel.element_counts(store, e.tag).values()))
        for e in readmodel.execution_summaries(store)
    ]
    print_result([*readmodel.SUMMARY_COLUMNS, "elements"], rows, args.format)
    return 0


def open_and_replay(url: str | None) -> Any:
    """Open a store, first storing what dead processes journalled for it and did not see stored."""
    from .exporter import MonetDBSpanExporter
    from .replay import replay_orphans
    from .spool import default_spool_dir
    from .store import describe, open_store

    store = open_store(url)
    result = replay_orphans(default_spool_dir(), describe(store.url), MonetDBSpanExporter(store=store), patience=0)
    if result.journals or result.kept:
        print(
            f"dlprov: stored {result.spans} span(s) from {result.journals} journal(s) of stopped processes"
            + (f"; {result.kept} journal(s) kept" if result.kept else ""),
            file=sys.stderr,
        )
    return store


def _cmd_replay(args: argparse.Namespace) -> int:
    from . import spool
    from .replay import replay_orphans

    spool_dir = args.spool_dir or spool.default_spool_dir()
    if args.endpoint:
        from .client import replay_spool
        from .otlp import make_otlp_exporter

        headers = {"Authorization": f"Bearer {args.token}"} if args.token else None
        exporter = make_otlp_exporter(args.endpoint, headers=headers)
        try:
            result = replay_orphans(spool_dir, args.endpoint, exporter, patience=0)
        finally:
            exporter.shutdown()
    else:
        from .exporter import MonetDBSpanExporter
        from .store import describe, open_store

        store = open_store(args.store)
        result = replay_orphans(spool_dir, describe(store.url), MonetDBSpanExporter(store=store), patience=0)
    print(f"replayed {result.journals} journal(s), {result.spans} span(s)"
          + (f"; {result.kept} kept" if result.kept else "")
          + (f"; {result.quarantined} quarantined" if result.quarantined else ""))
    if args.endpoint:
        files, spans = replay_spool(args.endpoint, args.spool_dir, token=args.token)
    else:
        files, spans = spool.replay(store, args.spool_dir)
    print(f"replayed {files} spool file(s), {spans} span(s)")
    return 0


def _add_target(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", help="store URL or path (default: $DLPROV_STORE or ./dlprov-data)")
    p.add_argument("--endpoint", help="query a DLProv collector instead (http://host:4318)")
    p.add_argument("--token", help="bearer token for the collector (default: $DLPROV_TOKEN)")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="dlprov", description="Provenance for deep learning on OpenTelemetry.")
    parser.add_argument("--version", action="version", version=f"dlprov-otel {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("sql", help="run SQL statements in one session and print the last result")
    p.add_argument("sql", nargs="+", help="e.g. 'SET SCHEMA \"mnist\"; SELECT * FROM otrainmodel'")
    _add_target(p)
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--write", action="store_true",
                   help="allow statements that write (a local store only; read-only by default)")
    p.set_defaults(func=_cmd_sql)

    p = sub.add_parser("executions", help="list runs with status, start, end and row counts")
    _add_target(p)
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.set_defaults(func=_cmd_executions)

    p = sub.add_parser("replay", help="store spans spooled while the store or collector was unreachable")
    _add_target(p)
    p.add_argument("--spool-dir", help="spool directory (default: $DLPROV_SPOOL_DIR or ~/.cache/dlprov/spool)")
    p.set_defaults(func=_cmd_replay)

    for name, (command, package) in _plugins().items():
        try:
            importlib.import_module(name).add_commands(sub)
        except ImportError as exc:
            # an optional feature whose dependencies are not installed: say what to install
            _missing_feature(sub, command, package, exc)
    for command, package in OPTIONAL_COMMANDS.items():
        if command not in sub.choices:
            _missing_feature(sub, command, package, None)
    return parser


def _missing_feature(
    sub: argparse._SubParsersAction, command: str, package: str, exc: ImportError | None
) -> None:
    if command in sub.choices:
        return
    install = f"pip install '{package}'"
    what = (exc.name or "a module") if exc else package
    message = f"`dlprov {command}` needs {what} that is not installed: {install}"
    p = sub.add_parser(command, help=f"(not installed: {install})", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)

    def fail(args: argparse.Namespace) -> int:
        raise DLProvError(message)

    p.set_defaults(func=fail)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if getattr(args, "token", None) is None and hasattr(args, "token"):
        import os

        args.token = os.environ.get("DLPROV_TOKEN")
    try:
        return int(args.func(args) or 0)
    except DLProvError as exc:
        print(f"dlprov: error: {exc}", file=sys.stderr)
        return 1
    except ImportError as exc:  # an optional dependency the command reached only now
        package = next((e for c, e in _plugins().values() if c == args.command and e), None)
        hint = f"pip install '{package}'" if package else "see the README's install section"
        print(
            f"dlprov: error: `dlprov {args.command}` needs {exc.name or exc} that is not installed: {hint}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
