"""What ``dlprov sql`` prints: headers for MonetDB's unnamed columns, and one-line errors with
hints (the CLI against a real store: tests/test_core_cli.py); the default execution tag and the
run name."""

from __future__ import annotations

import re

import pytest

from dlprov_otel import tracing
from dlprov_otel.sqltext import column_labels, error_line, explain_error, select_items


@pytest.mark.parametrize(
    ("sql", "columns", "expected"),
    [
        ("SELECT count(*) FROM t", ["%1"], ["count"]),
        # MonetDB numbers unnamed columns in its own order: labels go by position
        ("SELECT count(*), 1+2, MAX(id) FROM t", ["%1", "%3", "%2"], ["count", "1+2", "max"]),
        ("select distinct tag, Count(x) as n, avg(loss) from t group by tag", ["tag", "n", "%2"], ["tag", "n", "avg"]),
        ("WITH x AS (SELECT a, b FROM t) SELECT sum(a), b FROM x GROUP BY b", ["%1", "b"], ["sum", "b"]),
        ("SELECT substring('a,b', 1, 2), 'x, y' FROM t", ["%1", "%2"], ["substring", "'x, y'"]),
        ("SELECT *, count(*) FROM t", ["a", "%1"], ["a", "%1"]),  # a star: positions unknown, left alone
        ("SELECT 1", ["single_value"], ["single_value"]),
    ],
)
def test_unnamed_columns_take_a_label_from_the_select_list(sql, columns, expected):
    assert column_labels(sql, columns) == expected


def test_select_items_skip_nested_queries_comments_and_literals():
    sql = "SELECT a, (SELECT max(b) FROM u WHERE c = 'from, x') AS m /* , */ FROM t WHERE d IN (1, 2)"
    assert select_items(sql) == ["a", "(SELECT max(b) FROM u WHERE c = 'from, x') AS m /* , */"]
    assert select_items("SET SCHEMA mnist") is None


def test_errors_are_one_line_without_monetdbs_prepare():
    raw = 'syntax error, unexpected TRIGGER in: "prepare select trigger"\n  in: SELECT trigger FROM oadaptation'
    assert error_line(raw) == 'syntax error, unexpected TRIGGER in: "select trigger"'
    hinted = explain_error(raw, "SELECT trigger FROM oadaptation", list)
    assert "\n" not in hinted and hinted.endswith('a column of that name needs double quotes, "trigger"')
    # quoted already, or another cause: no hint
    assert "double quotes" not in explain_error("syntax error, unexpected IDENT in: \"selec\"", "SELEC 1", list)
    schema = explain_error("Schema (cifar) missing\n  in: SET SCHEMA \"cifar\"", 'SET SCHEMA "cifar"',
                           lambda: ["mnist", "prep"])
    assert schema == "SET SCHEMA: no schema 'cifar'; the store has: mnist, prep"


def test_default_tags_are_typeable_and_names_come_from_the_call_or_the_environment(monkeypatch):
    tags = {tracing.default_execution_tag("mnist") for _ in range(50)}
    assert all(re.fullmatch(r"mnist-\d{8}-\d{6}-[0-9a-f]{4}", t) for t in tags)
    assert len(tags) > 1  # the random part tells runs of the same second apart
    monkeypatch.delenv("DLPROV_RUN_NAME", raising=False)
    assert tracing.run_name() is None and tracing.run_name("  baseline ") == "baseline"
    monkeypatch.setenv("DLPROV_RUN_NAME", "from-env")
    assert tracing.run_name() == "from-env" and tracing.run_name("given") == "given"
    monkeypatch.setenv("DLPROV_RUN_NAME", "  ")
    assert tracing.run_name() is None


def test_a_schema_missing_from_a_qualified_name_lists_the_schemas_too():
    raw = "SELECT: no such schema 'nope'\n  in: SELECT * FROM nope.otrainmodel"
    line = explain_error(raw, "SELECT * FROM nope.otrainmodel", lambda: ["keras", "mnist"])
    assert line == "SELECT: no such schema 'nope'; the store has: keras, mnist"
    # a missing table is left as MonetDB says it
    assert explain_error("SELECT: no such table 'x'", "SELECT * FROM x", list) == "SELECT: no such table 'x'"


def test_sql_help_shows_backslash_d_and_the_quoted_keyword_column():
    import argparse

    from dlprov_otel.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    text = " ".join(sub.choices["sql"].format_help().split())
    assert "\\d lists the tables" in text and "\\d [schema.]table" in text
    assert 'SELECT adaptation_id, "trigger" FROM oadaptation' in text


def test_a_value_with_line_breaks_stays_on_its_row():
    import io

    from dlprov_otel.sqlcli import print_result

    out = io.StringIO()
    print_result(["name", "value"], [("git.diff", "diff --git a/t.py b/t.py\nindex 1..2\r\n+x\tz")], "table", out)
    lines = out.getvalue().splitlines()
    assert all(line[0] in "+|" for line in lines[:-1]) and lines[-1] == "1 row"
    assert len({len(line) for line in lines[:-1]}) == 1  # aligned
    assert "diff --git a/t.py b/t.py\\nindex 1..2\\n+x z" in out.getvalue()


def test_commands_that_take_a_run_say_it_may_be_latest_a_name_or_a_prefix():
    import argparse

    from dlprov_otel.cli import build_parser

    def sub(parser, name):
        return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]

    top = build_parser()
    for command in (sub(sub(top, "prov"), "export"), sub(sub(top, "neo4j"), "load")):
        text = " ".join(command.format_help().split())
        assert "latest" in text and "name" in text and "prefix" in text, text
