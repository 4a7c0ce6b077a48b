"""SQL text as people read it: labels for the columns MonetDB leaves unnamed (``%1`` for
``count(*)``, labelled ``count`` from the select list) and errors in one line (MonetDB's first
line, without the ``prepare`` it wraps every statement in; a missing schema listed beside those
that exist; the hint to quote a column named like an SQL keyword, ``"trigger"``). Used by
``dlprov sql`` and the read-only ``/v1/sql``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

_UNNAMED = re.compile(r"%\d+")
_FUNCTION = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_ALIAS = re.compile(r'\s+AS\s+("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_]*)\s*$', re.I)
_ENDS_SELECT_LIST = frozenset(("FROM", "WHERE", "GROUP", "HAVING", "ORDER", "LIMIT", "OFFSET", "UNION", "EXCEPT",
                               "INTERSECT", "WINDOW", "SAMPLE"))

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


def _known(schemas: Callable[[], list[str]]) -> str:
    try:
        return ", ".join(schemas()) or "none"
    except Exception:  # the hint is a courtesy; the error stands without it
        return "(could not be listed)"


def explain_error(message: str, statement: str, schemas: Callable[[], list[str]]) -> str:
    """One line for a failed statement: hints for a missing schema and an unquoted keyword."""
    line = error_line(message)
    missing = re.search(r"Schema \((.+?)\) missing", line)
    if missing:
        known = _known(schemas)
        return f"SET SCHEMA: no schema {missing.group(1)!r}; the store has: {known}"
    if re.search(r"no such schema '", line):  # a qualified name, SELECT * FROM cifar.t
        return f"{line}; the store has: {_known(schemas)}"
    return line + _keyword_hint(line, statement)


__all__ = ["column_labels", "error_line", "explain_error", "select_items"]
