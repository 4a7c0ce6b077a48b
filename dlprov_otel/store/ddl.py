"""All SQL DDL of the provenance store, in one place. The same SQL serves embedded MonetDB
(monetdbe) and a MonetDB server (pymonetdb)."""

from __future__ import annotations

from ..errors import SpecError
from ..model import AttributeType
from ..semconv import TAG_PATTERN

TEXT_SQL = "STRING"
NUMERIC_SQL = "DOUBLE"
SQL_TYPE = {AttributeType.TEXT: TEXT_SQL, AttributeType.FILE: TEXT_SQL, AttributeType.NUMERIC: NUMERIC_SQL}


def quote_ident(name: str) -> str:
    """Quote an identifier made from a user tag; the tag must already be a valid tag."""
    if not TAG_PATTERN.match(name) and name not in ("sys",):
        raise SpecError(f"refusing to use {name!r} as an SQL identifier")
    return '"' + name + '"'


# Catalog tables, in the connection's default schema (DfAnalyzer's names and key columns).
# No PRIMARY KEY clauses: monetdbe cannot bulk-append to keyed tables; the store keeps keys
# unique itself (merge on write, idempotent on trace and span id).
CATALOG: dict[str, str] = {
    "dataflow": """(
        id INT NOT NULL, tag STRING NOT NULL, version INT NOT NULL, spec_hash STRING,
        created_at TIMESTAMP, updated_at TIMESTAMP)""",
    "dataflow_version": """(
        dataflow_tag STRING NOT NULL, version INT NOT NULL, spec_hash STRING NOT NULL,
        spec STRING NOT NULL, created_at TIMESTAMP, trace_id STRING, span_id STRING)""",
    "data_transformation": """(
        dataflow_tag STRING NOT NULL, tag STRING NOT NULL, version_added INT NOT NULL)""",
    "data_set": """(
        dataflow_tag STRING NOT NULL, tag STRING NOT NULL, version_added INT NOT NULL)""",
    "data_dependency": """(
        dataflow_tag STRING NOT NULL, ds_tag STRING NOT NULL,
        previous_dt_tag STRING, next_dt_tag STRING, version_added INT NOT NULL)""",
    "attribute": """(
        dataflow_tag STRING NOT NULL, ds_tag STRING NOT NULL, name STRING NOT NULL,
        type STRING NOT NULL, ordinal INT NOT NULL, optional BOOLEAN, declared BOOLEAN)""",
    "dataflow_execution": """(
        tag STRING NOT NULL, dataflow_tag STRING, status STRING, start_time TIMESTAMP,
        end_time TIMESTAMP, scientist STRING, hardware_id STRING, service_name STRING,
        trace_id STRING, span_id STRING, world_size INT, error STRING)""",
    "hardware": """(
        id STRING NOT NULL, host_name STRING, arch STRING, os STRING, cpu_model STRING,
        cpu_count INT, memory_bytes BIGINT, gpus STRING, container STRING)""",
    "execution_process": """(
        execution_tag STRING NOT NULL, trace_id STRING, rank INT, world_size INT, pid INT,
        hardware_id STRING, scientist STRING, started_at TIMESTAMP)""",
    "task": """(
        id STRING NOT NULL, execution_tag STRING NOT NULL, dataflow_tag STRING, dt_tag STRING NOT NULL,
        status STRING, start_time TIMESTAMP, end_time TIMESTAMP, duration DOUBLE, rank INT,
        trace_id STRING, span_id STRING, error STRING)""",
    "task_dependency": """(
        execution_tag STRING NOT NULL, task_id STRING NOT NULL, dt_tag STRING,
        depends_on_task_id STRING NOT NULL, depends_on_dt_tag STRING)""",
    "span_log": """(
        trace_id STRING NOT NULL, span_id STRING NOT NULL, kind STRING, received_at TIMESTAMP)""",
}

# Columns every set relation has besides its attributes, in order. task_id comes first so
# `SELECT * FROM otrainmodel` reads like DfAnalyzer's tables; provenance columns follow the
# attributes.
SET_LEAD_COLUMNS: list[tuple[str, str]] = [("task_id", TEXT_SQL)]
SET_TRAIL_COLUMNS: list[tuple[str, str]] = [
    ("producer_task_id", TEXT_SQL),
    ("consumer_task_id", TEXT_SQL),
    ("execution_tag", TEXT_SQL),
    ("rank", "INT"),
    ("emitted_at", "TIMESTAMP"),
    ("element_id", TEXT_SQL),
    ("trace_id", TEXT_SQL),
    ("span_id", TEXT_SQL),
    ("idx", "INT"),
]


def catalog_statements(schema: str) -> list[str]:
    q = quote_ident(schema)
    return [f"CREATE TABLE IF NOT EXISTS {q}.{quote_ident(name)} {cols}" for name, cols in CATALOG.items()]


def create_schema(schema: str) -> str:
    return f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema)}"


def create_set_table(schema: str, table: str, attributes: list[tuple[str, AttributeType]]) -> str:
    cols = SET_LEAD_COLUMNS + [(name, SQL_TYPE[t]) for name, t in attributes] + SET_TRAIL_COLUMNS
    body = ", ".join(f"{quote_ident(c)} {t}" for c, t in cols)
    return f"CREATE TABLE IF NOT EXISTS {quote_ident(schema)}.{quote_ident(table)} ({body})"


def add_column(schema: str, table: str, column: str, attr_type: AttributeType) -> str:
    return (
        f"ALTER TABLE {quote_ident(schema)}.{quote_ident(table)} ADD COLUMN {quote_ident(column)} {SQL_TYPE[attr_type]}"
    )


TABLE_COLUMNS_SQL = (
    "SELECT c.name, c.type FROM sys.columns c JOIN sys.tables t ON c.table_id = t.id "
    "JOIN sys.schemas s ON t.schema_id = s.id WHERE s.name = ? AND t.name = ? ORDER BY c.number"
)
