"""Read-only SQL for the query endpoint (`/v1/sql`) of the collector and of `dlprov ui`.

A small tokenizer (string literals, quoted identifiers and comments are skipped, so a quoted
``'drop'`` is harmless and ``/* c */ drop`` is not) splits a script into statements and
allows only reads: ``SELECT``, ``WITH``, ``VALUES``, ``EXPLAIN``, ``PLAN``, ``SET SCHEMA`` and
the catalog shortcuts ``\\d`` / ``\\d TABLE``. A statement that names a writing keyword anywhere
(``WITH x AS (...) DELETE ...``) is refused too. The server also rolls the session back
instead of committing (MonetDB has no read-only transactions), so nothing written could stay.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dlprov_otel.errors import QueryError
from dlprov_otel.store.schema import CATALOG, describe_table_sql, describe_tables_sql

ALLOWED_FIRST = ("SELECT", "WITH", "VALUES", "EXPLAIN", "PLAN", "(")
# Keywords that write, change the schema, grant, move files, end the transaction or run code.
FORBIDDEN = frozenset(
    (
        *("INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "TRUNCATE", "DROP", "CREATE", "ALTER"),
        *("RENAME", "GRANT", "REVOKE", "COPY", "CALL", "COMMENT", "COMMIT", "ROLLBACK", "START"),
        *("BEGIN", "SAVEPOINT", "RELEASE", "DECLARE", "EXEC", "EXECUTE", "PREPARE", "DEALLOCATE"),
        *("ANALYZE", "SET", "LOAD"),
    )
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_IDENT = r'(?:[A-Za-z_][A-Za-z0-9_]*|"(?:[^"]|"")+")'
_SET_SCHEMA = re.compile(rf"^SET\s+SCHEMA\s+{_IDENT}$", re.I)
_META = re.compile(rf"^\\d\s*(?:(?P<schema>{_IDENT})\s*\.\s*)?(?P<table>{_IDENT})?\s*$")


class SQLRefused(QueryError):
    """A statement the read-only endpoint will not run."""


@dataclass
class Statement:
    """One statement: its text, its keyword tokens (words outside literals and comments), and
    the identifiers it names (quoted ones too, unquoted ones lower-cased) with those that
    qualify another name (``x`` in ``x.y``)."""

    text: str
    words: list[str]
    names: set[str] = field(default_factory=set)
    qualified: set[tuple[str, str]] = field(default_factory=set)  # ("sys", "task") for sys.task


# MonetDB's own schemas, and its system objects that show users, secrets, paths or the server's
# internals, or that crash embedded MonetDB (``sys.sessions``): the endpoint reads provenance
# (DLProv's catalog and the dataflow schemas), nothing else. MonetDB looks a name up in the
# current schema and then in ``sys``, so the objects are refused unqualified too.
SYSTEM_SCHEMAS = frozenset(
    ("sys", "tmp", "json", "profiler", "logging", "information_schema", "wlc", "wlr", "bam", "lidar", "netcdf", "shp")
)
# DLProv's catalog lives in the store's default schema (``sys`` for the monetdb user), and the
# plain catalog views that ``\\d`` reads show only names: these stay visible as ``sys.x``.
VISIBLE_IN_SYS = frozenset((*CATALOG, "tables", "columns", "schemas", "keys", "idxs", "types"))
SYSTEM_OBJECTS = frozenset(
    (
        *("sessions", "queue", "env", "debug", "dump_database", "users", "auths", "db_user_info", "user_role"),
        *("var", "prepared_statements", "prepared_statements_args", "querylog_catalog", "querylog_calls"),
        *("querylog_history", "tracelog", "storage", "optimizers", "environment", "rejects", "keywords"),
        *("remote_table_credentials", "shutdown", "settimeout", "setsession", "setoptimizer", "setquerytimeout"),
        *("setsessiontimeout", "stopsession", "setworkerlimit", "setmemorylimit", "password_hash"),
    )
)


def tokenize(sql: str, backslash_escapes: bool = True, lenient: bool = False) -> list[Statement]:
    """Split ``sql`` on semicolons outside literals and comments.

    ``backslash_escapes``: whether ``\\'`` inside a plain '...' literal escapes the quote, as
    MonetDB does by default (``R'...'`` literals never escape, ``E'...'`` always do).
    Raises :class:`SQLRefused` for an unterminated literal or comment; ``lenient`` instead
    returns the statements before the one that cannot be parsed.
    """
    out: list[Statement] = []
    start, i, n = 0, 0, len(sql)
    words: list[str] = []
    names: set[str] = set()
    qualified: set[tuple[str, str]] = set()
    pending: list[str] = []  # a qualifier whose "." was seen: the next name is qualified by it

    def named(name: str, end: int) -> None:
        names.add(name)
        if pending:
            qualified.add((pending.pop(), name))
        j = end
        while j < n and sql[j].isspace():
            j += 1
        if j < n and sql[j] == ".":
            pending.append(name)

    word_end = -1  # where the last word ended: a word right before a quote is its prefix
    while i < n:
        c = sql[i]
        if c == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif c == "/" and sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            if end < 0:
                if lenient:
                    return out
                raise SQLRefused("unterminated /* comment")
            i = end + 2
        elif c in "'\"":
            prefix = words[-1].upper() if c == "'" and words and word_end == i else ""
            escapes = c == "'" and {"R": False, "E": True}.get(prefix, backslash_escapes)
            try:
                end = _skip_literal(sql, i, c, escapes)
            except SQLRefused:
                if lenient:
                    return out
                raise
            if c == '"':
                named(sql[i + 1 : end - 1].replace('""', '"'), end)
            i = end
        elif c == ";":
            _emit(out, sql[start:i], words, names, qualified)
            words, names, qualified = [], set(), set()
            pending.clear()
            i += 1
            start = i
        elif c == "\\" and not sql[start:i].strip():
            # a \d catalog shortcut runs to the end of its statement
            end = sql.find(";", i)
            end = n if end < 0 else end
            _emit(out, sql[start:end], ["\\D"], set(), set())
            words, names, qualified = [], set(), set()
            pending.clear()
            i = start = end + 1 if end < n else n
        elif c.isalpha() or c == "_":
            m = _WORD.match(sql, i)
            assert m is not None
            words.append(m.group(0))
            i = word_end = m.end()
            named(m.group(0).lower(), i)
        else:
            if c == "(" and not words:
                words.append("(")
            i += 1
    _emit(out, sql[start:], words, names, qualified)
    return out


def _skip_literal(sql: str, i: int, quote: str, escapes: bool) -> int:
    j, n = i + 1, len(sql)
    while j < n:
        ch = sql[j]
        if escapes and ch == "\\":
            j += 2
            continue
        if ch == quote:
            if j + 1 < n and sql[j + 1] == quote:  # doubled quote
                j += 2
                continue
            return j + 1
        j += 1
    kind = "string literal" if quote == "'" else "quoted identifier"
    raise SQLRefused(f"unterminated {kind} starting at character {i + 1}")


def _emit(
    out: list[Statement], text: str, words: list[str], names: set[str], qualified: set[tuple[str, str]]
) -> None:
    if words or _strip_comments(text):
        out.append(Statement(text.strip(), list(words), set(names), set(qualified)))


def _strip_comments(text: str) -> str:
    # only used where a literal would make the statement fail anyway (SET SCHEMA, emptiness)
    return re.sub(r"--[^\n]*|/\*.*?\*/", " ", text, flags=re.S).strip()


def _check(stmt: Statement, number: int) -> None:
    words = [w.upper() for w in stmt.words]
    if words == ["\\D"]:
        if not _META.match(stmt.text):
            raise SQLRefused(f"statement {number}: use \\d or \\d [schema.]table, got {stmt.text[:80]!r}")
        return
    if not words:
        raise SQLRefused(f"statement {number} is not a query: {stmt.text[:80]!r}")
    first = words[0]
    if first == "SET":
        if _SET_SCHEMA.match(_strip_comments(stmt.text)):
            _check_visible(stmt, number, first)
            return
        raise SQLRefused(
            f"statement {number}: only SET SCHEMA is allowed on the read-only endpoint, got {stmt.text[:80]!r}"
        )
    if first not in ALLOWED_FIRST:
        raise SQLRefused(
            f"statement {number} starts with {first}: the SQL endpoint is read-only "
            "(allowed: SELECT, WITH, VALUES, EXPLAIN, PLAN, SET SCHEMA, \\d)"
        )
    bad = sorted({w for w in words if w in FORBIDDEN})
    if bad:
        raise SQLRefused(
            f"statement {number} contains {', '.join(bad)}: the SQL endpoint is read-only "
            "(quote an identifier with that name: \"update\")"
        )
    _check_visible(stmt, number, first)


def _check_visible(stmt: Statement, number: int, first: str) -> None:
    system = sorted(
        f"{q}.{x}" for q, x in stmt.qualified if q in SYSTEM_SCHEMAS and not (q == "sys" and x in VISIBLE_IN_SYS)
    ) or sorted(stmt.names & SYSTEM_OBJECTS)
    if first == "SET" and not system:
        system = sorted((stmt.names & SYSTEM_SCHEMAS) - {"sys", "schema"})
    if system:
        what = system[0]
        raise SQLRefused(
            f"statement {number} names {what!r}: the SQL endpoint reads provenance only (DLProv's catalog "
            "and the dataflow schemas), not MonetDB's system schemas and objects"
        )


def check_read_only(sql: str) -> list[str]:
    """The statements of ``sql`` if every one only reads; raises :class:`SQLRefused` otherwise.

    The script is checked twice, with and without backslash escapes in plain string
    literals, so a literal such as ``'a\\'; drop table t; --'`` cannot hide a statement from
    one reading while MonetDB uses the other.
    """
    if not isinstance(sql, str) or not sql.strip():
        raise SQLRefused("no SQL statement given")
    statements = tokenize(sql, backslash_escapes=True)
    if "\\" in sql:
        # the other reading: a statement that would not even parse there cannot run
        for number, stmt in enumerate(tokenize(sql, backslash_escapes=False, lenient=True), 1):
            _check(stmt, number)
    if not statements:
        raise SQLRefused("no SQL statement given (only comments)")
    for number, stmt in enumerate(statements, 1):
        _check(stmt, number)
    return [expand_meta(s.text) if s.words == ["\\D"] else s.text for s in statements]


def _unquote(ident: str | None) -> str | None:
    if ident is None:
        return None
    if ident.startswith('"'):
        return ident[1:-1].replace('""', '"')
    return ident.lower()  # MonetDB folds unquoted identifiers to lower case


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def expand_meta(text: str) -> str:
    """``\\d`` lists the tables of user schemas; ``\\d [schema.]table`` lists a table's columns."""
    m = _META.match(text.strip())
    if m is None:
        raise SQLRefused(f"use \\d or \\d [schema.]table, got {text[:80]!r}")
    table, schema = _unquote(m.group("table")), _unquote(m.group("schema"))
    if table is None:
        return describe_tables_sql()
    return describe_table_sql(_literal(table), _literal(schema) if schema else None)


__all__ = ["SQLRefused", "check_read_only", "expand_meta", "tokenize"]
