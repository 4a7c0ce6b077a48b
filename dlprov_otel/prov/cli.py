"""``dlprov prov export``: write the PROV document of an execution or a dataflow."""

from __future__ import annotations

import argparse

from . import DEFAULT_FORMATS, FORMATS


def _cmd_export(args: argparse.Namespace) -> int:
    from ..store import require_existing
    from . import export

    paths = export(
        require_existing(args.store),  # reading: never a new empty store
        execution=args.execution,
        dataflow=args.dataflow,
        formats=args.format,
        out_dir=args.out,
        progress=not args.no_progress,
    )
    for path in paths:
        print(path)
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``dlprov prov export``."""
    p = subparsers.add_parser("prov", help="W3C PROV documents (PROV-JSON, PROV-N, XML, RDF, PNG, SVG)")
    sub = p.add_subparsers(dest="prov_command", metavar="SUBCOMMAND", required=True)
    exp = sub.add_parser("export", help="write the PROV document of an execution or of a dataflow")
    what = exp.add_mutually_exclusive_group(required=True)
    what.add_argument("--execution", help="a run: its tag, latest, its name or a unique prefix (`dlprov executions`)")
    what.add_argument("--dataflow", help="dataflow tag: one document with all its executions")
    exp.add_argument("--store", help="store URL or path (default: $DLPROV_STORE or ./dlprov-data)")
    exp.add_argument(
        "--format",
        default=",".join(DEFAULT_FORMATS),
        help=f"comma-separated formats among {','.join(FORMATS)} (default: %(default)s)",
    )
    exp.add_argument("--out", default="dlprov-out", help="output directory (default: %(default)s)")
    exp.add_argument("--no-progress", action="store_true", help="no progress bar on a terminal")
    exp.set_defaults(func=_cmd_export)
