"""The provenance store's schema, in one place: catalog tables and their DDL, the layout of a
set relation (its provenance columns), identifier quoting and catalog introspection.

The same SQL serves embedded MonetDB (monetdbe) and a MonetDB server (pymonetdb). Queries
over the catalog live in :mod:`.readmodel`; writes in :mod:`.writer`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..errors import SpecError
from ..model import AttributeType
from ..semconv import PROVENANCE_COLUMNS, TAG_PATTERN

TEXT_SQL = "STRING"
NUMERIC_SQL = "DOUBLE"
SQL_TYPE = {AttributeType.TEXT: TEXT_SQL, AttributeType.FILE: TEXT_SQL, AttributeType.NUMERIC: NUMERIC_SQL}
# MonetDB types, as sys.columns names them, that hold numbers
NUMERIC_TYPES = frozenset({"double", "real", "float", "decimal", "int", "bigint", "smallint", "tinyint", "hugeint"})

# --- catalog tables (DfAnalyzer's names and key columns) --------------------------------------
DATAFLOW = "dataflow"
DATAFLOW_VERSION = "dataflow_version"
DATA_TRANSFORMATION = "data_transformation"
DATA_SET = "data_set"
DATA_DEPENDENCY = "data_dependency"
ATTRIBUTE = "attribute"
DATAFLOW_EXECUTION = "dataflow_execution"
HARDWARE = "hardware"
EXECUTION_PROCESS = "execution_process"
TASK = "task"
TASK_DEPENDENCY = "task_dependency"
SPAN_LOG = "span_log"
EXECUTION_RECIPE = "execution_recipe"

# In the connection's default schema. No PRIMARY KEY clauses: monetdbe cannot bulk-append to
# keyed tables; the store keeps keys unique itself (merge on write, idempotent on trace and
# span id).
CATALOG: dict[str, str] = {
    DATAFLOW: """(
        id INT NOT NULL, tag STRING NOT NULL, version INT NOT NULL, spec_hash STRING,
        created_at TIMESTAMP, updated_at TIMESTAMP)""",
    DATAFLOW_VERSION: """(
        dataflow_tag STRING NOT NULL, version INT NOT NULL, spec_hash STRING NOT NULL,
        spec STRING NOT NULL, created_at TIMESTAMP, trace_id STRING, span_id STRING)""",
    DATA_TRANSFORMATION: """(
        dataflow_tag STRING NOT NULL, tag STRING NOT NULL, version_added INT NOT NULL)""",
    DATA_SET: """(
        dataflow_tag STRING NOT NULL, tag STRING NOT NULL, version_added INT NOT NULL)""",
    DATA_DEPENDENCY: """(
        dataflow_tag STRING NOT NULL, ds_tag STRING NOT NULL,
        previous_dt_tag STRING, next_dt_tag STRING, version_added INT NOT NULL)""",
    ATTRIBUTE: """(
        dataflow_tag STRING NOT NULL, ds_tag STRING NOT NULL, name STRING NOT NULL,
        type STRING NOT NULL, ordinal INT NOT NULL, optional BOOLEAN, declared BOOLEAN)""",
    DATAFLOW_EXECUTION: """(
        tag STRING NOT NULL, dataflow_tag STRING, status STRING, start_time TIMESTAMP,
        end_time TIMESTAMP, scientist STRING, hardware_id STRING, service_name STRING,
        trace_id STRING, span_id STRING, world_size INT, error STRING, name STRING)""",
    HARDWARE: """(
        id STRING NOT NULL, host_name STRING, arch STRING, os STRING, cpu_model STRING,
        cpu_count INT, memory_bytes BIGINT, gpus STRING, container STRING)""",
    EXECUTION_PROCESS: """(
        execution_tag STRING NOT NULL, trace_id STRING, rank INT, world_size INT, pid INT,
        hardware_id STRING, scientist STRING, started_at TIMESTAMP)""",
    TASK: """(
        id STRING NOT NULL, execution_tag STRING NOT NULL, dataflow_tag STRING, dt_tag STRING NOT NULL,
        status STRING, start_time TIMESTAMP, end_time TIMESTAMP, duration DOUBLE, rank INT,
        trace_id STRING, span_id STRING, error STRING)""",
    TASK_DEPENDENCY: """(
        execution_tag STRING NOT NULL, task_id STRING NOT NULL, dt_tag STRING,
        depends_on_task_id STRING NOT NULL, depends_on_dt_tag STRING)""",
    SPAN_LOG: """(
        trace_id STRING NOT NULL, span_id STRING NOT NULL, kind STRING, received_at TIMESTAMP)""",
    # the recipe of a run (dlprov_otel/recipe.py): one row per name and emission; the latest
    # emission of a name (per rank) is its value. Digests are sha256 in hex.
    EXECUTION_RECIPE: """(
        execution_tag STRING NOT NULL, rank INT, name STRING NOT NULL, value STRING, digest STRING,
        phase STRING, recorded_at TIMESTAMP, trace_id STRING, span_id STRING)""",
}

# Catalog columns added after stores were made with the tables above: added when such a store opens.
ADDED_COLUMNS: list[tuple[str, str, str]] = [(DATAFLOW_EXECUTION, "name", "STRING")]

# --- set relations: one table per set, in a schema named after the dataflow ------------------
# Provenance columns of every set relation, besides its attributes. Their names are spelled in
# semconv.PROVENANCE_COLUMNS (the data model, below the store, refuses them as attribute names);
# their SQL types and order are here.
(
    TASK_ID,
    PRODUCER_TASK_ID,
    CONSUMER_TASK_ID,
    EXECUTION_TAG,
    RANK,
    EMITTED_AT,
    ELEMENT_ID,
    TRACE_ID,
    SPAN_ID,
    IDX,
) = PROVENANCE_COLUMNS

# In order: task_id comes first so `SELECT * FROM otrainmodel` reads like DfAnalyzer's tables;
# the other provenance columns follow the attributes.
SET_LEAD_COLUMNS: list[tuple[str, str]] = [(TASK_ID, TEXT_SQL)]
SET_TRAIL_COLUMNS: list[tuple[str, str]] = [
    (PRODUCER_TASK_ID, TEXT_SQL),
    (CONSUMER_TASK_ID, TEXT_SQL),
    (EXECUTION_TAG, TEXT_SQL),
    (RANK, "INT"),
    (EMITTED_AT, "TIMESTAMP"),
    (ELEMENT_ID, TEXT_SQL),
    (TRACE_ID, TEXT_SQL),
    (SPAN_ID, TEXT_SQL),
    (IDX, "INT"),
]
# Columns every set relation has; attributes may not take these names.
RESERVED_COLUMNS = frozenset(c for c, _ in SET_LEAD_COLUMNS + SET_TRAIL_COLUMNS)
# Provenance columns that identify a row rather than say anything a person reads per row.
INTERNAL_COLUMNS = frozenset({EXECUTION_TAG, TRACE_ID, SPAN_ID, ELEMENT_ID, IDX})


# --- identifiers ----------------------------------------------------------------------------
def quote_ident(name: str) -> str:
    """Quote an identifier made from a user tag; the tag must already be a valid tag."""
    if not TAG_PATTERN.match(name) and name not in ("sys",):
        raise SpecError(f"refusing to use {name!r} as an SQL identifier")
    return '"' + name + '"'


def qualified(schema: str, table: str) -> str:
    """``"schema"."table"``; raises ``SpecError`` for a name the store would not have made."""
    return f"{quote_ident(schema)}.{quote_ident(table)}"


# --- DDL ------------------------------------------------------------------------------------
def catalog_statements(schema: str) -> list[str]:
    return [f"CREATE TABLE IF NOT EXISTS {qualified(schema, name)} {cols}" for name, cols in CATALOG.items()]


def create_schema(schema: str) -> str:
    return f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}"


def create_set_table(schema: str, table: str, attributes: list[tuple[str, AttributeType]]) -> str:
    cols = SET_LEAD_COLUMNS + [(name, SQL_TYPE[t]) for name, t in attributes] + SET_TRAIL_COLUMNS
    body = ", ".join(f"{quote_ident(c)} {t}" for c, t in cols)
    return f"CREATE TABLE IF NOT EXISTS {qualified(schema, table)} ({body})"


def add_column(schema: str, table: str, column: str, attr_type: AttributeType) -> str:
    return f"ALTER TABLE {qualified(schema, table)} ADD COLUMN {quote_ident(column)} {SQL_TYPE[attr_type]}"


# --- example queries ------------------------------------------------------------------------
def example_queries(dataflow: str) -> list[tuple[str, list[str]]]:
    """The seed's example queries, ``(label, statements)``: the catalog's dataflows and
    executions, a DL dataflow's hyperparameters, epochs and test metrics, and the tasks."""
    use = f"SET SCHEMA {quote_ident(dataflow)}"
    by_start = "ORDER BY start_time"
    return [
        ("dataflows", [f"SELECT * FROM {DATAFLOW}"]),
        ("executions", [f"SELECT * FROM {DATAFLOW_EXECUTION}"]),
        ("hyperparameters", [use, "SELECT * FROM itrainmodel"]),
        ("epochs", [use, "SELECT * FROM otrainmodel"]),
        ("test metrics", [use, "SELECT * FROM otestmodel"]),
        ("tasks", [f"SELECT execution_tag, id, dt_tag, status, start_time, end_time, duration FROM {TASK} {by_start}"]),
    ]


# --- introspection --------------------------------------------------------------------------
def describe_tables_sql() -> str:
    """``\\d``: the tables of user schemas, with their column counts."""
    return (
        'SELECT s.name AS "schema", t.name AS "table", '
        '(SELECT COUNT(*) FROM sys.columns c WHERE c.table_id = t.id) AS "columns" '
        "FROM sys.tables t JOIN sys.schemas s ON t.schema_id = s.id "
        "WHERE NOT t.system ORDER BY s.name, t.name"
    )


def describe_table_sql(table_literal: str, schema_literal: str | None) -> str:
    """``\\d [schema.]table``: a table's columns; the names come as quoted SQL literals."""
    where_schema = f"s.name = {schema_literal}" if schema_literal else "s.name = CURRENT_SCHEMA"
    return (
        'SELECT c.name AS "column", c.type AS "type", c.type_digits AS "digits", '
        'c."null" AS "nullable", c.number AS "position" '
        "FROM sys.columns c JOIN sys.tables t ON c.table_id = t.id "
        f"JOIN sys.schemas s ON t.schema_id = s.id WHERE t.name = {table_literal} AND {where_schema} "
        "ORDER BY c.number"
    )


Fetch = Callable[[str, Sequence[Any]], tuple[list[str], list[tuple]]]
"""``fetch(sql, params) -> (columns, rows)``: a backend's or a store's way to read."""

_TABLE_COLUMNS_SQL = (
    "SELECT c.name, c.type FROM sys.columns c JOIN sys.tables t ON c.table_id = t.id "
    "JOIN sys.schemas s ON t.schema_id = s.id WHERE s.name = ? AND t.name = ? ORDER BY c.number"
)
_SCHEMA_COLUMNS_SQL = (
    "SELECT t.name, c.name, c.type FROM sys.columns c JOIN sys.tables t ON c.table_id = t.id "
    "JOIN sys.schemas s ON t.schema_id = s.id WHERE s.name = ? AND NOT t.system ORDER BY t.name, c.number"
)


def table_columns(fetch: Fetch, schema: str, table: str) -> list[tuple[str, str]]:
    """``[(column, MonetDB type)]`` of one table in column order; ``[]`` when it does not exist."""
    _, rows = fetch(_TABLE_COLUMNS_SQL, [schema, table])
    return [(n, t) for n, t in rows]


def schema_tables(fetch: Fetch, schema: str) -> dict[str, list[tuple[str, str]]]:
    """Tables of a schema (a dataflow's set relations): table -> ``[(column, type)]``."""
    _, rows = fetch(_SCHEMA_COLUMNS_SQL, [schema])
    out: dict[str, list[tuple[str, str]]] = {}
    for table, column, ctype in rows:
        out.setdefault(table, []).append((column, ctype))
    return out


def is_numeric(sql_type: str) -> bool:
    return sql_type.lower() in NUMERIC_TYPES


__all__ = [
    "ADDED_COLUMNS",
    "CATALOG",
    "INTERNAL_COLUMNS",
    "NUMERIC_TYPES",
    "RESERVED_COLUMNS",
    "SET_LEAD_COLUMNS",
    "SET_TRAIL_COLUMNS",
    "add_column",
    "catalog_statements",
    "create_schema",
    "create_set_table",
    "example_queries",
    "is_numeric",
    "qualified",
    "quote_ident",
    "schema_tables",
    "table_columns",
]
