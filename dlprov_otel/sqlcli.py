"""``dlprov sql``: statements in one session, every result printed, errors in one line.

- Every statement that returns rows prints its result, in order (``SET SCHEMA`` carries over).
- ``\\d`` lists the tables of user schemas and ``\\d [schema.]table`` a table's columns, as in
  the dashboard's console.
- Columns MonetDB leaves unnamed (``%1`` for ``count(*)``) take a label from the select list
  (``count``).
- An error is one line: MonetDB's first line, without the ``prepare`` it wraps every statement
  in; a missing schema lists those that exist; a column named like an SQL keyword
  (``trigger``) gets the hint to quote it.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import logging
import math
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from .errors import DLProvError, QueryError
from .sqltext import column_labels, explain_error

_SET = re.compile(r"\s*SET\b", re.I)
_META = re.compile(r"\s*\\d\b")


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
    # one line per row: a stored diff or traceback shows its line breaks as \n
    return str(v).replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n").replace("\t", " ")


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


# --- the command -----------------------------------------------------------------------------
_SCHEMAS_SQL = "SELECT name FROM sys.schemas WHERE NOT system ORDER BY name"


@contextmanager
def _echo_muted() -> Iterator[None]:
    """monetdbe logs each failed statement's exception (``ParseException:SQLparser:42000!...``)
    at ERROR besides raising it: keep that out, so an error is the one line this command prints."""
    logger = logging.getLogger("monetdbe")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _expand(statements: list[str]) -> list[str]:
    from .http.sqlguard import expand_meta

    return [expand_meta(s) if _META.match(s) else s for s in statements]


def _local(args: argparse.Namespace, statements: list[str], open_store: Callable[..., Any]) -> tuple:
    if not args.write:
        # read-only, as through the collector: reads only, and none of MonetDB's system objects
        # (one of them, sys.sessions, crashes embedded MonetDB)
        from .http.sqlguard import check_read_only

        statements = check_read_only("; ".join(statements))
    else:
        statements = _expand(statements)
    store = open_store(args.store, not args.write)  # reads never create a store
    results: list[Any] = []
    try:
        with _echo_muted():
            store.run_script(statements, read_only=not args.write, results=results)
    except QueryError as exc:
        failed = str(exc).split("\n  in: ", 1)[-1] if "\n  in: " in str(exc) else " ".join(statements)
        raise DLProvError(
            explain_error(str(exc), failed, lambda: [r[0] for r in store.query(_SCHEMAS_SQL).rows])
        ) from None
    return [(r.columns, r.rows) for r in results], None, statements


def _remote(args: argparse.Namespace, statements: list[str]) -> tuple:
    from .client import query, query_result

    # one request per statement that returns rows, after the SET SCHEMA statements before it
    # (the read-only endpoint keeps no other session state), so that every result comes back
    results, cut, shown = [], None, []
    for k, stmt in enumerate(statements):
        if _SET.match(stmt) and k < len(statements) - 1:
            continue
        script = [s for s in statements[:k] if _SET.match(s)] + [stmt]
        try:
            columns, rows, cut_here = query_result(args.endpoint, "; ".join(script), token=args.token)
        except QueryError as exc:
            raise DLProvError(
                explain_error(str(exc), stmt, lambda: [r[0] for r in query(args.endpoint, _SCHEMAS_SQL, args.token)[1]])
            ) from None
        if columns:
            results.append((columns, rows))
            shown.append(stmt)
        cut = cut_here if cut_here is not None else cut
    return results, cut, shown


def _refuse_unknown_tables(statements: list[str], results: list[tuple]) -> None:
    """``\\d TABLE`` of a table that does not exist is an error, not an empty listing."""
    asked = [s for s in statements if not _SET.match(s)]
    if len(asked) != len(results):
        return
    for stmt, (_, rows) in zip(asked, results, strict=True):
        name = _META.sub("", stmt, count=1).strip()
        if _META.match(stmt) and name and not rows:
            where = "" if "." in name else " in the current schema"
            raise DLProvError(f"\\d {name}: no table {name}{where}; \\d lists the tables")


def run(args: argparse.Namespace, open_store: Callable[..., Any]) -> int:
    """``dlprov sql``: print every result of the statements (``OK`` when none returns rows)."""
    statements = split_statements(" ; ".join(args.sql))
    if not statements:
        raise DLProvError("no SQL statement given")
    if args.endpoint:
        results, cut, ran = _remote(args, statements)
    else:
        results, cut, ran = _local(args, statements, open_store)
    with_rows = [s for s in ran if not _SET.match(s)]
    _refuse_unknown_tables(statements, results)
    if not results:
        print("OK")
    for n, (columns, rows) in enumerate(results):
        if n and args.format != "json":  # a blank line between results (JSON: one array each)
            print()
        label_from = with_rows[n] if len(with_rows) == len(results) else ""
        print_result(column_labels(label_from, columns), rows, args.format)
    if cut is not None:
        print(f"truncated: the collector returns at most {cut} rows (narrow the query with WHERE or LIMIT)",
              file=sys.stderr)
    return 0


__all__ = ["print_result", "run", "split_statements"]
