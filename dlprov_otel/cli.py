"""The ``dlprov`` command line.

Core commands live here (``sql``, ``executions``, ``replay``); feature modules add theirs
through ``add_commands(subparsers)``: the core's own in :data:`PLUGINS`, the other
distributions' (``dlprov demo`` from dlprov-otel-integrations, ``dlprov collector`` from
dlprov-otel-collector) through the ``dlprov_otel.commands`` entry point group.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import Any

from . import sqlcli
from .errors import DLProvError
from .sqlcli import print_result, split_statements  # noqa: F401 - the demo and tests import them from here

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


def _cmd_sql(args: argparse.Namespace) -> int:
    return sqlcli.run(args, open_and_replay)


def _cmd_executions(args: argparse.Namespace) -> int:
    """The runs, with the dashboard's status (killed detected), local or through a collector."""
    if args.endpoint:
        from .client import executions

        columns, rows = executions(args.endpoint, token=args.token)
        rows = [tuple(_as_time(v) if c.endswith("_time") else v for c, v in zip(columns, r, strict=False))
                for r in rows]  # JSON's ISO strings as the local store's datetimes, printed alike
    else:
        from .store.readmodel import EXECUTION_LIST_COLUMNS, execution_list

        columns = EXECUTION_LIST_COLUMNS
        rows = [tuple(run[c] for c in columns) for run in execution_list(open_and_replay(args.store))]
    print_result(columns, rows, args.format)
    return 0


def _as_time(value: Any) -> Any:
    import datetime as dt

    try:
        return dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        return value


def open_and_replay(url: str | None, must_exist: bool = True) -> Any:
    """Open a store, first storing what dead processes journalled for it and did not see stored.
    ``must_exist``: a store that is not there is an error, not a new empty one."""
    from .errors import StoreError
    from .exporter import MonetDBSpanExporter
    from .journal import orphans
    from .replay import replay_orphans
    from .spool import default_spool_dir
    from .store import describe, normalize_url, open_store, require_existing

    if must_exist:
        try:
            require_existing(url)
        except StoreError:
            if not orphans(default_spool_dir(), describe(normalize_url(url))):
                raise
            # a process died before its store was made: what it journalled makes it now
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

    p = sub.add_parser(
        "sql", help="run SQL statements in one session and print every result (\\d [TABLE]: tables, columns)",
        description="Runs the statements in one session and prints every result. \\d lists the tables, "
        "\\d [schema.]table a table's columns. A column named like an SQL keyword needs double quotes: "
        'SELECT adaptation_id, "trigger" FROM oadaptation.',
    )
    p.add_argument("sql", nargs="+", help="e.g. 'SET SCHEMA \"mnist\"; SELECT * FROM otrainmodel'")
    _add_target(p)
    p.add_argument("--format", choices=("table", "csv", "json"), default="table")
    p.add_argument("--write", action="store_true",
                   help="allow statements that write (a local store only; read-only by default)")
    p.set_defaults(func=_cmd_sql)

    p = sub.add_parser(
        "executions", help="list runs: tag, name, status (killed detected, as the dashboard), times, epochs, rows"
    )
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
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at the interpreter's exit
        return code
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
    except BrokenPipeError:  # the reader stopped early (| head): no traceback, nothing more to print
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
