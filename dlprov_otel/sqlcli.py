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

_UNNAMED = re.compile(r"%\d+")
_FUNCTION = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_ALIAS = re.compile(r'\s+AS\s+("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_]*)\s*$', re.I)
_ENDS_SELECT_LIST = frozenset(("FROM", "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "OFFSET", "UNION", "EXCEPT",
                               "INTERSECT", "WINDOW", "SAMPLE"))
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


# --- column labels ---------------------------------------------------------------------------
def _top_level_words(sql: str) -> list[tuple[int, int, str]]:
    """``(start, end, text)`` of the words and commas outside quotes, comments and parentheses."""
    out: list[tuple[int, int, str]] = []
    depth, i, n = 0, 0, len(sql)
    while i < n:
        c = sql[i]
        if c in ("'", '"'):
            j = i + 1
            while j < n and not (sql[j] == c and (j + 1 >= n or sql[j + 1] != c)):
                j += 2 if sql[j] == c else 1
            i = j + 1
            continue
        if sql.startswith("--", i):
            i = n if sql.find("\n", i) < 0 else sql.find("\n", i)
            continue
        if sql.startswith("/*", i):
            i = n if sql.find("*/", i) < 0 else sql.find("*/", i) + 2
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif depth == 0 and c == ",":
            out.append((i, i + 1, ","))
        elif depth == 0 and (c.isalpha() or c == "_"):
            j = i
            while j < n and (sql[j].isalnum() or sql[j] == "_"):
                j += 1
            out.append((i, j, sql[i:j]))
            i = j
            continue
        i += 1
    return out


def select_items(sql: str) -> list[str] | None:
    """The expressions of the outermost select list, or None when there is none."""
    words = _top_level_words(sql)
    start = next((k for k, w in enumerate(words) if w[2].upper() == "SELECT"), None)
    if start is None:
        return None
    k = start + 1
    if k < len(words) and words[k][2].upper() in ("DISTINCT", "ALL"):
        k += 1
    begin = words[k - 1][1]
    end = next((w[0] for w in words[k:] if w[2].upper() in _ENDS_SELECT_LIST), len(sql))
    commas = [w[0] for w in words[k:] if w[2] == "," and w[0] < end]
    bounds = [begin, *[c + 1 for c in commas]]
    stops = [*commas, end]
    return [sql[a:b].strip() for a, b in zip(bounds, stops, strict=True)]


def _label(item: str) -> str:
    alias = _ALIAS.search(item)
    if alias:
        return alias.group(1).strip('"')
    fn = _FUNCTION.match(item)
    if fn and item.rstrip().endswith(")"):
        return fn.group(1).lower()
    text = " ".join(item.split())
    return text if len(text) <= 40 else text[:37] + "..."


def column_labels(statement: str, columns: Sequence[str]) -> list[str]:
    """``columns`` with MonetDB's ``%N`` names replaced by a label from the select list."""
    if not any(_UNNAMED.fullmatch(c) for c in columns):
        return list(columns)
    items = select_items(statement)
    if items is None or len(items) != len(columns) or any(i == "*" or i.endswith(".*") for i in items):
        return list(columns)
    return [_label(item) if _UNNAMED.fullmatch(c) else c for c, item in zip(columns, items, strict=True)]


# --- errors ----------------------------------------------------------------------------------
def error_line(message: str) -> str:
    """An SQL error in one line: the first line, without MonetDB's ``prepare`` wrapping."""
    text = message.strip()
    first = text.splitlines()[0].strip() if text else "the query failed"
    return re.sub(r'(in: ")prepare\s+', r"\1", first, flags=re.I)


def _keyword_hint(message: str, statement: str) -> str:
    m = re.search(r"unexpected ([A-Z_]+) in:", message)
    if not m or m.group(1) in ("IDENT", "STRING", "INTNUM", "SCOLON"):
        return ""
    word = m.group(1).lower()
    if not re.search(rf'(?<!["\w]){word}(?![\w"])', statement, re.I):
        return ""
    return f'; {word} is an SQL keyword: a column of that name needs double quotes, "{word}"'


def explain_error(message: str, statement: str, schemas: Callable[[], list[str]]) -> str:
    """One line for a failed statement: hints for a missing schema and an unquoted keyword."""
    line = error_line(message)
    missing = re.search(r"Schema \((.+?)\) missing", line)
    if missing:
        try:
            known = ", ".join(schemas()) or "none"
        except Exception:  # the hint is a courtesy; the error stands without it
            known = "(could not be listed)"
        return f"SET SCHEMA: no schema {missing.group(1)!r}; the store has: {known}"
    return line + _keyword_hint(line, statement)


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
    if not results:
        print("OK")
    for n, (columns, rows) in enumerate(results):
        if n and args.format == "table":
            print()
        label_from = with_rows[n] if len(with_rows) == len(results) else ""
        print_result(column_labels(label_from, columns), rows, args.format)
    if cut is not None:
        print(f"truncated: the collector returns at most {cut} rows (narrow the query with WHERE or LIMIT)",
              file=sys.stderr)
    return 0


__all__ = ["column_labels", "error_line", "explain_error", "print_result", "run", "select_items", "split_statements"]
