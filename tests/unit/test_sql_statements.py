"""SQL scripts split into statements: the CLI's splitter and the read-only guard of the HTTP
query API (``/v1/sql``), on generated scripts whose literals and comments hold ``;``, quotes,
``--`` and write keywords."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
from hypothesis import given

from dlprov_otel.cli import split_statements
from dlprov_otel.http.sqlguard import FORBIDDEN, SQLRefused, check_read_only, tokenize

# Free text for literals and comments: any character but the backslash (whose meaning in a
# literal depends on the server; the guard has its own tests for it) and NUL.
FREE = st.text(st.characters(exclude_characters="\\\x00", exclude_categories=("Cs",)), max_size=12)
LETTERS = "abcdefghijklmnopqrstuvwxyz_"
WORD = st.builds(str.__add__, st.sampled_from(LETTERS), st.text(LETTERS + "0123456789", max_size=8)).filter(
    lambda w: w.upper() not in FORBIDDEN
)
WRITE = st.sampled_from(sorted(FORBIDDEN - {"SET"}))


def _pair(text: str, expected: str) -> tuple[str, str]:
    return text, expected


# (SQL text, what the CLI's splitter keeps of it): comments go, the rest stays as written
FRAGMENT = st.one_of(
    WORD.map(lambda w: _pair(w, w)),
    st.integers(0, 10**6).map(lambda n: _pair(str(n), str(n))),
    st.sampled_from([",", "(", ")", "*", "=", "<", "+"]).map(lambda p: _pair(p, p)),
    FREE.map(lambda s: "'" + s.replace("'", "''") + "'").map(lambda lit: _pair(lit, lit)),
    FREE.filter(bool).map(lambda s: '"' + s.replace('"', '""') + '"').map(lambda q: _pair(q, q)),
    FREE.filter(lambda s: "*/" not in s and not s.endswith("*")).map(lambda s: _pair(f"/*{s}*/", "")),
    FREE.filter(lambda s: "\n" not in s and "\r" not in s).map(lambda s: _pair(f"--{s}\n", "\n")),
)


@st.composite
def read_statement(draw) -> tuple[str, str]:
    """A SELECT whose fragments are separated by spaces (no literal prefixes such as E'...')."""
    first = draw(st.sampled_from(["SELECT", "select", "WITH", "VALUES", "EXPLAIN"]))
    parts = [(first, first), *draw(st.lists(FRAGMENT, max_size=8))]
    return " ".join(p[0] for p in parts), " ".join(p[1] for p in parts).strip()


SCRIPT = st.lists(read_statement(), min_size=1, max_size=5)


@given(SCRIPT)
def test_the_cli_splits_on_semicolons_outside_literals_and_comments(statements):
    script = ";".join(text for text, _ in statements) + " ; "  # a trailing ; adds no statement
    assert split_statements(script) == [expected for _, expected in statements]


@given(SCRIPT)
def test_the_guard_lets_every_read_through_and_agrees_with_the_cli(statements):
    script = ";\n".join(text for text, _ in statements)
    allowed = check_read_only(script)
    assert allowed == [text.strip() for text, _ in statements]
    assert len(tokenize(script)) == len(split_statements(script))


@given(SCRIPT, st.integers(0, 5), WRITE, st.lists(FRAGMENT, max_size=4))
def test_a_write_anywhere_in_a_script_is_refused(statements, at, verb, rest):
    texts = [text for text, _ in statements]
    texts.insert(min(at, len(texts)), " ".join([verb.lower() if at % 2 else verb, *(f[0] for f in rest)]))
    with pytest.raises(SQLRefused, match=rf"statement {min(at, len(statements)) + 1} (starts with|contains) {verb}"):
        check_read_only(";".join(texts))


@given(WRITE, FREE)
def test_a_write_keyword_inside_a_literal_comment_or_quoted_name_is_only_text(verb, noise):
    quoted = noise.replace("'", "''")
    for script in (
        f"SELECT '{quoted}; {verb} TABLE t' AS x",
        f"SELECT 1 /* ; {verb} TABLE t */",
        f'SELECT "{verb.lower()}" FROM t',
        f"SELECT 1 -- ; {verb} TABLE t\n",
    ):
        assert check_read_only(script) == [script.strip()]
        assert len(split_statements(script)) == 1


@pytest.mark.parametrize(
    ("script", "statements"),
    [
        ("SELECT ';' ; -- x;\nSELECT \"a;b\" /* ; */; ", ["SELECT ';'", 'SELECT "a;b"']),
        ("SELECT 'it''s; fine'", ["SELECT 'it''s; fine'"]),
        ("-- only a comment", []),
        (";;", []),
        ("SELECT 1;SELECT 2", ["SELECT 1", "SELECT 2"]),
    ],
)
def test_the_cli_splitter_examples(script, statements):
    assert split_statements(script) == statements


@pytest.mark.parametrize(
    ("script", "why"),
    [
        ("SELECT 'open", "unterminated string literal"),
        ('SELECT "open', "unterminated quoted identifier"),
        ("SELECT 1 /* open", "unterminated /* comment"),
        ("-- nothing", "no SQL statement"),
        ("   ", "no SQL statement given"),
        ("SET SCHEMA mnist DROP", "only SET SCHEMA"),
        ("SELECT 'a\\'; DROP TABLE t; --'", "starts with DROP"),  # one reading or the other
    ],
)
def test_the_guard_refuses_what_it_cannot_read_safely(script, why):
    with pytest.raises(SQLRefused) as err:
        check_read_only(script)
    assert why in str(err.value)


def test_set_schema_and_catalog_shortcuts_pass():
    out = check_read_only('SET SCHEMA "mnist"; \\d otrainmodel')
    assert out[0] == 'SET SCHEMA "mnist"'
    assert "FROM sys.columns" in out[1] and "t.name = 'otrainmodel'" in out[1]


# MonetDB's own schemas and system objects stay out of reach (one of them, sys.sessions,
# crashes embedded MonetDB); DLProv's catalog, in the default schema `sys`, stays readable.
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM sys.sessions",
        'SELECT count(*) FROM "sys"."sessions"',
        "SELECT * FROM sessions",
        "SELECT sys.env()",
        "SELECT * FROM sys . users",
        "SELECT * FROM sys.auths",
        "SELECT * FROM sys.dump_database",
        "SELECT sys.debug(1)",
        "SELECT * FROM logging.compinfo",
        "SET SCHEMA tmp",
        'SET SCHEMA "mnist"; SELECT * FROM sys.queue',
    ],
)
def test_system_objects_are_refused(sql):
    with pytest.raises(SQLRefused, match="reads provenance only"):
        check_read_only(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT COUNT(*) FROM sys.task WHERE id = 'x'",
        "SELECT * FROM sys.dataflow_execution",
        'SET SCHEMA "mnist"; SELECT loss, "epoch" FROM otrainmodel',
        "SELECT t.loss FROM otrainmodel t",
        "SELECT name FROM sys.tables",
        "SET SCHEMA sys",
        "SELECT json, env_name FROM t",
    ],
)
def test_provenance_stays_readable(sql):
    assert check_read_only(sql)
