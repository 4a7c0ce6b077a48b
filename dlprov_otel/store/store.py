"""The provenance store: turns span records into catalog rows and set relations.

Writes are bulk (one append per set relation and batch) and idempotent on
(trace id, span id). Catalog rows for executions and tasks are merged, so the short marker
spans and the long spans they belong to may arrive in any order.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .. import semconv
from ..errors import QueryError, SpecError, StoreError
from ..model import AttributeType, DataflowSpec, normalize_tag
from ..records import SpanRecord
from . import ddl
from .backends import NUMERIC_TYPES, Backend, query_error

logger = logging.getLogger(__name__)

_FINAL = (semconv.FINISHED, semconv.FAILED)
_IN_CHUNK = 400


@dataclass
class Result:
    """Columns and rows of a query."""

    columns: list[str]
    rows: list[tuple]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r, strict=False)) for r in self.rows]


def _ts(ns: int | None) -> dt.datetime | None:
    if not ns:
        return None
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).replace(tzinfo=None)


def _merge_status(old: str | None, new: str | None) -> str | None:
    if old in _FINAL and new not in _FINAL:
        return old
    return new or old


class Store:
    """A MonetDB provenance store (embedded or server) named by ``url``."""

    def __init__(self, backend: Backend, url: str) -> None:
        self.backend = backend
        self.url = url
        self.lock = backend.lock
        self.schema = backend.default_schema
        self._columns: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self._specs: dict[str, DataflowSpec] = {}
        self._refs = 0
        self._closed = False
        with self.lock:
            for stmt in ddl.catalog_statements(self.schema):
                backend.execute(stmt)
            backend.commit()

    # -- naming -----------------------------------------------------------------------------
    def cat(self, table: str) -> str:
        """Qualified name of a catalog table."""
        return f"{ddl.quote_ident(self.schema)}.{ddl.quote_ident(table)}"

    # -- ingest -----------------------------------------------------------------------------
    def ingest(self, records: Sequence[SpanRecord]) -> int:
        """Store span records; returns how many were new. Raises ``StoreError`` on failure."""
        if not records:
            return 0
        with self.lock:
            try:
                fresh = self._drop_seen(records)
                if not fresh:
                    return 0
                by_kind: dict[str, list[SpanRecord]] = defaultdict(list)
                for r in fresh:
                    by_kind[r.kind or ""].append(r)
                for r in by_kind.get(semconv.KIND_DATAFLOW, []):
                    self._ingest_dataflow(r)
                self._ingest_executions(
                    by_kind.get(semconv.KIND_EXECUTION_START, []) + by_kind.get(semconv.KIND_EXECUTION, [])
                )
                self._ingest_tasks(by_kind.get(semconv.KIND_TASK_STATE, []) + by_kind.get(semconv.KIND_TASK, []))
                self._ingest_datasets(by_kind.get(semconv.KIND_DATASET, []))
                now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
                self._append(
                    self.schema,
                    "span_log",
                    {
                        "trace_id": [r.trace_id for r in fresh],
                        "span_id": [r.span_id for r in fresh],
                        "kind": [r.kind for r in fresh],
                        "received_at": [now] * len(fresh),
                    },
                    len(fresh),
                )
                self.backend.commit()
                return len(fresh)
            except Exception as exc:
                try:
                    self.backend.reset()
                except Exception:
                    logger.debug("resetting the store connection failed", exc_info=True)
                self._columns.clear()  # DDL may have been rolled back with the batch
                self._specs.clear()
                if isinstance(exc, StoreError | SpecError):
                    raise
                raise StoreError(f"writing provenance to {self.url} failed: {exc}") from exc

    def _drop_seen(self, records: Sequence[SpanRecord]) -> list[SpanRecord]:
        unique: dict[tuple[str, str], SpanRecord] = {}
        for r in records:
            unique.setdefault((r.trace_id, r.span_id), r)
        seen: set[tuple[str, str]] = set()
        keys = list(unique)
        for i in range(0, len(keys), _IN_CHUNK):
            chunk = keys[i : i + _IN_CHUNK]
            ph = ", ".join("?" for _ in chunk)
            _, rows = self.backend.fetch(
                f"SELECT trace_id, span_id FROM {self.cat('span_log')} WHERE span_id IN ({ph})",
                [k[1] for k in chunk],
            )
            seen.update((t, s) for t, s in rows)
        return [r for k, r in unique.items() if k not in seen]

    # dataflows ------------------------------------------------------------------------------
    def _ingest_dataflow(self, r: SpanRecord) -> None:
        spec = DataflowSpec.from_json(r.attributes[semconv.DATAFLOW_SPEC])
        self.ensure_dataflow(spec, created_ns=r.end_ns, trace_id=r.trace_id, span_id=r.span_id)

    def current_spec(self, tag: str) -> DataflowSpec | None:
        if tag in self._specs:
            return self._specs[tag]
        _, rows = self.backend.fetch(
            f"SELECT spec FROM {self.cat('dataflow_version')} WHERE dataflow_tag = ? ORDER BY version DESC LIMIT 1",
            [tag],
        )
        if not rows:
            return None
        self._specs[tag] = DataflowSpec.from_json(rows[0][0])
        return self._specs[tag]

    def ensure_dataflow(
        self, spec: DataflowSpec, created_ns: int | None = None, trace_id: str | None = None, span_id: str | None = None
    ) -> int:
        """Record a dataflow version (merged with what is stored) and create its relations."""
        old = self.current_spec(spec.tag)
        merged = old.merged_with(spec) if old else spec
        now = _ts(created_ns) or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        if old is not None and merged.hash == old.hash:
            _, rows = self.backend.fetch(f"SELECT version FROM {self.cat('dataflow')} WHERE tag = ?", [spec.tag])
            return int(rows[0][0])
        _, rows = self.backend.fetch(f"SELECT id, version FROM {self.cat('dataflow')} WHERE tag = ?", [spec.tag])
        if rows:
            version = int(rows[0][1]) + 1
            self.backend.execute(
                f"UPDATE {self.cat('dataflow')} SET version = ?, spec_hash = ?, updated_at = ? WHERE tag = ?",
                [version, merged.hash, now, spec.tag],
            )
        else:
            version = 1
            _, idrows = self.backend.fetch(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {self.cat('dataflow')}")
            self.backend.execute(
                f"INSERT INTO {self.cat('dataflow')} (id, tag, version, spec_hash, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [int(idrows[0][0]), spec.tag, version, merged.hash, now, now],
            )
        self.backend.execute(
            f"INSERT INTO {self.cat('dataflow_version')} "
            "(dataflow_tag, version, spec_hash, spec, created_at, trace_id, span_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [spec.tag, version, merged.hash, merged.to_json(), now, trace_id, span_id],
        )
        old_t = {t["tag"] for t in old.transformations} if old else set()
        for t in merged.transformations:
            if t["tag"] not in old_t:
                self.backend.execute(
                    f"INSERT INTO {self.cat('data_transformation')} (dataflow_tag, tag, version_added) "
                    "VALUES (?, ?, ?)",
                    [spec.tag, t["tag"], version],
                )
        old_deps = self._dependencies(old) if old else set()
        for ds, prev, nxt in sorted(self._dependencies(merged) - old_deps, key=str):
            self.backend.execute(
                f"INSERT INTO {self.cat('data_dependency')} "
                "(dataflow_tag, ds_tag, previous_dt_tag, next_dt_tag, version_added) "
                "VALUES (?, ?, ?, ?, ?)",
                [spec.tag, ds, prev, nxt, version],
            )
        self.backend.execute(f"CREATE SCHEMA IF NOT EXISTS {ddl.quote_ident(spec.tag)}")
        for s in merged.sets.values():
            is_new = old is None or s["tag"] not in old.sets
            if is_new:
                self.backend.execute(
                    f"INSERT INTO {self.cat('data_set')} (dataflow_tag, tag, version_added) VALUES (?, ?, ?)",
                    [spec.tag, s["tag"], version],
                )
            attrs = [(a["name"], AttributeType(a["type"]), bool(a.get("optional"))) for a in s["attributes"]]
            self.ensure_set_table(spec.tag, s["tag"], attrs, declared=True)
        self._specs[spec.tag] = merged
        return version

    @staticmethod
    def _dependencies(spec: DataflowSpec) -> set[tuple[str, str | None, str | None]]:
        deps: set[tuple[str, str | None, str | None]] = set()
        for ds in spec.sets:
            producers = spec.producers_of(ds) or [None]
            consumers = spec.consumers_of(ds) or [None]
            for p in producers:
                for c in consumers:
                    deps.add((ds, p, c))
        return deps

    def ensure_set_table(
        self,
        dataflow: str,
        set_tag: str,
        attributes: Iterable[tuple[str, AttributeType, bool]],
        declared: bool = False,
    ) -> list[tuple[str, str]]:
        """Create the relation of a set, or add the columns it lacks; returns its columns."""
        attributes = list(attributes)
        cols = self.table_columns(dataflow, set_tag)
        if not cols:
            self.backend.execute(f"CREATE SCHEMA IF NOT EXISTS {ddl.quote_ident(dataflow)}")
            self.backend.execute(ddl.create_set_table(dataflow, set_tag, [(n, t) for n, t, _ in attributes]))
            self._columns.pop((dataflow, set_tag), None)
            cols = self.table_columns(dataflow, set_tag)
            new = attributes
            start = 0
        else:
            have = {c for c, _ in cols}
            new = [a for a in attributes if a[0] not in have]
            for name, t, _ in new:
                self.backend.execute(ddl.add_column(dataflow, set_tag, name, t))
            if new:
                self._columns.pop((dataflow, set_tag), None)
                cols = self.table_columns(dataflow, set_tag)
            _, rows = self.backend.fetch(
                f"SELECT COALESCE(MAX(ordinal), -1) + 1 FROM {self.cat('attribute')} "
                "WHERE dataflow_tag = ? AND ds_tag = ?",
                [dataflow, set_tag],
            )
            start = int(rows[0][0])
        if new:
            _, known = self.backend.fetch(
                f"SELECT name FROM {self.cat('attribute')} WHERE dataflow_tag = ? AND ds_tag = ?", [dataflow, set_tag]
            )
            known_names = {k[0] for k in known}
            pos = start
            for name, t, optional in new:
                if name in known_names:
                    continue
                self.backend.execute(
                    f"INSERT INTO {self.cat('attribute')} "
                    "(dataflow_tag, ds_tag, name, type, ordinal, optional, declared) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [dataflow, set_tag, name, t.value, pos, optional, declared],
                )
                pos += 1
        return cols

    def table_columns(self, schema: str, table: str) -> list[tuple[str, str]]:
        key = (schema, table)
        if key not in self._columns:
            _, rows = self.backend.fetch(ddl.TABLE_COLUMNS_SQL, [schema, table])
            if not rows:
                return []
            self._columns[key] = [(n, t) for n, t in rows]
        return self._columns[key]

    # executions -----------------------------------------------------------------------------
    def _ingest_executions(self, records: list[SpanRecord]) -> None:
        if not records:
            return
        merged: dict[str, dict[str, Any]] = {}
        processes: list[dict[str, Any]] = []
        hardware: dict[str, dict[str, Any]] = {}
        for r in sorted(records, key=lambda x: (x.kind == semconv.KIND_EXECUTION, x.end_ns)):
            tag = str(r.attributes.get(semconv.EXECUTION_TAG, ""))
            hw_id, hw = self._hardware(r)
            hardware[hw_id] = hw
            status = r.attributes.get(semconv.EXECUTION_STATUS)
            if r.kind == semconv.KIND_EXECUTION and not status:
                status = semconv.FAILED if r.status_code == "ERROR" else semconv.FINISHED
            row = {
                "tag": tag,
                "dataflow_tag": r.attributes.get(semconv.DATAFLOW_TAG),
                "status": status or semconv.RUNNING,
                "start_time": _ts(r.start_ns),
                "end_time": _ts(r.end_ns) if r.kind == semconv.KIND_EXECUTION else None,
                "scientist": r.attributes.get(semconv.EXECUTION_SCIENTIST),
                "hardware_id": hw_id,
                "service_name": r.attr(semconv.SERVICE_NAME),
                "trace_id": r.trace_id,
                "span_id": r.span_id if r.kind == semconv.KIND_EXECUTION else (r.parent_span_id or r.span_id),
                "world_size": r.attributes.get(semconv.WORLD_SIZE),
                "error": r.attributes.get(semconv.EXECUTION_ERROR) or (r.status_message or None),
            }
            if r.kind == semconv.KIND_EXECUTION_START:
                processes.append(
                    {
                        "execution_tag": tag,
                        "trace_id": r.trace_id,
                        "rank": r.attributes.get(semconv.RANK),
                        "world_size": r.attributes.get(semconv.WORLD_SIZE),
                        "pid": r.attr(semconv.PROCESS_PID),
                        "hardware_id": hw_id,
                        "scientist": row["scientist"],
                        "started_at": row["start_time"],
                    }
                )
            merged[tag] = self._merge_row(merged.get(tag), row)
        self._upsert("dataflow_execution", ["tag"], list(merged.values()))
        if processes:
            self._append(self.schema, "execution_process", _columnar(processes), len(processes))
        self._upsert("hardware", ["id"], list(hardware.values()), keep_existing=True)

    @staticmethod
    def _hardware(r: SpanRecord) -> tuple[str, dict[str, Any]]:
        gpus = r.attr(semconv.HARDWARE_GPUS) or []
        hw = {
            "host_name": r.attr(semconv.HOST_NAME),
            "arch": r.attr(semconv.HOST_ARCH),
            "os": r.attr(semconv.OS_DESCRIPTION),
            "cpu_model": r.attr(semconv.HARDWARE_CPU_MODEL),
            "cpu_count": r.attr(semconv.HARDWARE_CPU_COUNT),
            "memory_bytes": r.attr(semconv.HARDWARE_MEMORY),
            "gpus": json.dumps(list(gpus)),
            "container": r.attr(semconv.HARDWARE_CONTAINER) or None,
        }
        hw_id = hashlib.sha256(json.dumps(hw, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return hw_id, {"id": hw_id, **hw}

    @staticmethod
    def _merge_row(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
        if old is None:
            return dict(new)
        out = dict(old)
        for k, v in new.items():
            if k == "status":
                out[k] = _merge_status(old.get(k), v)
            elif k == "start_time" and old.get(k) and v:
                out[k] = min(old[k], v)
            elif v is not None:
                out[k] = v
        return out

    def _upsert(self, table: str, keys: list[str], rows: list[dict[str, Any]], keep_existing: bool = False) -> None:
        """Merge ``rows`` with the stored rows of the same keys (delete + insert)."""
        if not rows:
            return
        cols = [c for c, _ in self.table_columns(self.schema, table)]
        existing: dict[tuple, dict[str, Any]] = {}
        for i in range(0, len(rows), _IN_CHUNK):
            chunk = rows[i : i + _IN_CHUNK]
            cond = " OR ".join("(" + " AND ".join(f"{ddl.quote_ident(k)} = ?" for k in keys) + ")" for _ in chunk)
            params = [row[k] for row in chunk for k in keys]
            names, found = self.backend.fetch(f"SELECT * FROM {self.cat(table)} WHERE {cond}", params)
            for f in found:
                d = dict(zip(names, f, strict=False))
                existing[tuple(d[k] for k in keys)] = d
        final: list[dict[str, Any]] = []
        for row in rows:
            key = tuple(row[k] for k in keys)
            old = existing.get(key)
            if old is not None and keep_existing:
                continue
            final.append(self._merge_row(old, row) if old else row)
        stale = [r for r in final if tuple(r[k] for k in keys) in existing]
        for i in range(0, len(stale), _IN_CHUNK):
            chunk = stale[i : i + _IN_CHUNK]
            cond = " OR ".join("(" + " AND ".join(f"{ddl.quote_ident(k)} = ?" for k in keys) + ")" for _ in chunk)
            self.backend.execute(f"DELETE FROM {self.cat(table)} WHERE {cond}", [r[k] for r in chunk for k in keys])
        # SQL INSERT, not the bulk append: monetdbe's append into a table that has deleted
        # rows corrupts it (rows of NULLs, then "project_bte: does not match always")
        names = ", ".join(ddl.quote_ident(c) for c in cols)
        row_ph = "(" + ", ".join("?" for _ in cols) + ")"
        for i in range(0, len(final), 100):
            chunk = final[i : i + 100]
            self.backend.execute(
                f"INSERT INTO {self.cat(table)} ({names}) VALUES " + ", ".join(row_ph for _ in chunk),
                [r.get(c) for r in chunk for c in cols],
            )

    # tasks ----------------------------------------------------------------------------------
    def _ingest_tasks(self, records: list[SpanRecord]) -> None:
        if not records:
            return
        merged: dict[tuple, dict[str, Any]] = {}
        deps: list[dict[str, Any]] = []
        for r in sorted(records, key=lambda x: (x.kind == semconv.KIND_TASK, x.end_ns)):
            a = r.attributes
            status = a.get(semconv.TASK_STATUS)
            final = r.kind == semconv.KIND_TASK
            if final and status not in _FINAL:
                status = semconv.FAILED if r.status_code == "ERROR" else semconv.FINISHED
            row = {
                "id": str(a.get(semconv.TASK_ID)),
                "execution_tag": str(a.get(semconv.EXECUTION_TAG, "")),
                "dataflow_tag": a.get(semconv.DATAFLOW_TAG),
                "dt_tag": a.get(semconv.TRANSFORMATION_TAG),
                "status": status or semconv.RUNNING,
                "start_time": _ts(r.start_ns),
                "end_time": _ts(r.end_ns) if final else None,
                "duration": (r.end_ns - r.start_ns) / 1e9 if final else None,
                "rank": a.get(semconv.RANK),
                "trace_id": r.trace_id,
                "span_id": r.span_id if final else r.parent_span_id,
                "error": a.get(semconv.TASK_ERROR) or (r.status_message or None),
            }
            key = (row["execution_tag"], row["dt_tag"], row["id"])
            merged[key] = self._merge_row(merged.get(key), row)
            if final:
                for dep_id, dep_dt in zip(
                    a.get(semconv.TASK_DEPENDENCIES, []) or [],
                    a.get(semconv.TASK_DEPENDENCY_TRANSFORMATIONS, []) or [],
                    strict=False,
                ):
                    deps.append(
                        {
                            "execution_tag": row["execution_tag"],
                            "task_id": row["id"],
                            "dt_tag": row["dt_tag"],
                            "depends_on_task_id": str(dep_id),
                            "depends_on_dt_tag": dep_dt or None,
                        }
                    )
        self._upsert("task", ["execution_tag", "dt_tag", "id"], list(merged.values()))
        if deps:
            self._append(self.schema, "task_dependency", _columnar(deps), len(deps))

    # datasets -------------------------------------------------------------------------------
    def _ingest_datasets(self, records: list[SpanRecord]) -> None:
        # Rows are gathered as tuples per (relation, attribute list) and transposed into columns
        # at the end: per span this is a handful of lookups and one tuple (the hot path).
        groups: dict[tuple[str, str, tuple[str, ...]], _Group] = {}
        for r in records:
            get = r.attributes.get
            raw_names = tuple(get(semconv.DATASET_ATTRIBUTES, ()))
            shape = _shape(raw_names, tuple(get(semconv.DATASET_TYPES, ())), r.span_id)
            key = (
                _tag(get(semconv.DATAFLOW_TAG, ""), "dataflow tag"),
                _tag(get(semconv.DATASET_TAG, ""), "set tag"),
                shape.names,
            )
            group = groups.get(key)
            if group is None:
                group = groups[key] = _Group(shape)
            n = int(get(semconv.DATASET_ELEMENTS, 0))
            if n <= 0:
                continue
            task_id = get(semconv.TASK_ID)
            task_id = None if task_id is None else str(task_id)
            role = get(semconv.DATASET_ROLE)
            base = (
                task_id,
                task_id if role == "OUTPUT" else None,
                task_id if role == "INPUT" else None,
                get(semconv.EXECUTION_TAG),
                get(semconv.RANK),
                r.end_ns,
                r.trace_id,
                r.span_id,
            )
            values = [get(k) for k in shape.keys]
            values = [v if isinstance(v, list | tuple) else (v,) for v in values]
            if n == 1:
                group.rows.append((*base, r.span_id + "-0", 0, *[v[0] if v else None for v in values]))
            else:
                for i in range(n):
                    group.rows.append((*base, f"{r.span_id}-{i}", i, *[v[i] if i < len(v) else None for v in values]))
        tables: dict[tuple[str, str], list[_Group]] = {}
        for (dataflow, set_tag, _), group in groups.items():
            tables.setdefault((dataflow, set_tag), []).append(group)
        for (dataflow, set_tag), parts in tables.items():
            attrs: dict[str, AttributeType] = {}
            for g in parts:
                for name, t in zip(g.shape.names, g.shape.types, strict=True):
                    attrs.setdefault(name, t)
            table_cols = self.ensure_set_table(dataflow, set_tag, [(n, t, True) for n, t in attrs.items()])
            total = sum(len(g.rows) for g in parts)
            if not total:
                continue
            data: dict[str, list[Any]] = {c: [] for c, _ in table_cols}
            for g in parts:
                columns = dict(zip(_DATASET_COLUMNS + g.shape.names, zip(*g.rows, strict=True), strict=True))
                for c in data:
                    col = columns.get(c)
                    data[c].extend(col if col is not None else [None] * len(g.rows))
            for c, t in table_cols:
                values = data[c]
                if t in ("double", "real", "float") and not all(v is None or type(v) is float for v in values):
                    data[c] = [_as_float(v, set_tag, c) for v in values]
                elif (
                    t not in NUMERIC_TYPES
                    and t not in ("timestamp", "boolean")
                    and not all(v is None or type(v) is str for v in values)
                ):
                    data[c] = [None if v is None else str(v) for v in values]
            self.backend.append(dataflow, set_tag, table_cols, data, total)

    def _append(self, schema: str, table: str, data: dict[str, list[Any]], n: int) -> None:
        cols = self.table_columns(schema, table)
        full = {c: data.get(c, [None] * n) for c, _ in cols}
        self.backend.append(schema, table, cols, full, n)

    # -- queries ----------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] | None = None) -> Result:
        with self.lock:
            try:
                cols, rows = self.backend.fetch(sql, params)
                self.backend.commit()
            except Exception as exc:
                self.backend.rollback()
                raise query_error(sql, exc) from exc
            return Result(cols, rows)

    def run_script(self, statements: Sequence[str], *, read_only: bool = False) -> Result:
        """Run statements in one session and return the last result (``SET SCHEMA`` carries).

        ``read_only`` rolls the session back instead of committing: nothing it wrote stays.
        """
        with self.lock:
            result = Result([], [])
            try:
                for stmt in statements:
                    cols, rows = self.backend.fetch(stmt)
                    if cols:
                        result = Result(cols, rows)
                if read_only:
                    self.backend.rollback()
                else:
                    self.backend.commit()
            except Exception as exc:
                self.backend.rollback()
                raise query_error(stmt, exc) from exc
            finally:
                try:
                    self.backend.execute(f"SET SCHEMA {ddl.quote_ident(self.schema)}")
                except Exception:
                    pass
            return result

    def executions(self) -> Result:
        """Runs with status, start, end, task and element counts."""
        return self.query(
            f"SELECT e.tag, e.dataflow_tag, e.status, e.start_time, e.end_time, e.scientist, "
            f"(SELECT COUNT(*) FROM {self.cat('task')} t WHERE t.execution_tag = e.tag) AS tasks "
            f"FROM {self.cat('dataflow_execution')} e ORDER BY e.start_time"
        )

    def element_counts(self, execution_tag: str) -> dict[str, int]:
        """Rows per set relation for one execution."""
        with self.lock:
            _, sets = self.backend.fetch(
                f"SELECT d.dataflow_tag, d.tag FROM {self.cat('data_set')} d JOIN {self.cat('dataflow_execution')} e "
                "ON e.dataflow_tag = d.dataflow_tag WHERE e.tag = ?",
                [execution_tag],
            )
        counts: dict[str, int] = {}
        for df, ds in sets:
            if not self.table_columns(df, ds):
                continue
            res = self.query(
                f"SELECT COUNT(*) FROM {ddl.quote_ident(df)}.{ddl.quote_ident(ds)} WHERE execution_tag = ?",
                [execution_tag],
            )
            counts[ds] = int(res.rows[0][0])
        return counts

    # -- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        from . import release

        release(self)


_DATASET_COLUMNS = (
    "task_id",
    "producer_task_id",
    "consumer_task_id",
    "execution_tag",
    "rank",
    "emitted_at",
    "trace_id",
    "span_id",
    "element_id",
    "idx",
)


@dataclass(frozen=True)
class _Shape:
    """The attribute list of a dataset emission, normalized once per distinct list."""

    names: tuple[str, ...]
    types: tuple[AttributeType, ...]
    keys: tuple[str, ...]  # span attribute keys of the values


@dataclass
class _Group:
    shape: _Shape
    rows: list[tuple] = field(default_factory=list)


_shapes: dict[tuple[tuple[str, ...], tuple[str, ...]], _Shape] = {}


def _shape(raw_names: tuple[str, ...], raw_types: tuple[str, ...], span_id: str) -> _Shape:
    shape = _shapes.get((raw_names, raw_types))
    if shape is None:
        names = tuple(_tag(n, "attribute name") for n in raw_names)
        types = tuple(_ATTR_TYPES.get(t) for t in raw_types)
        if len(types) != len(names) or None in types:
            raise SpecError(
                f"dataset span {span_id}: attribute names {list(names)} do not match types {list(raw_types)}"
            )
        if len(_shapes) > 10_000:
            _shapes.clear()
        shape = _shapes[(raw_names, raw_types)] = _Shape(
            names, types, tuple(semconv.DATA_PREFIX + n for n in raw_names)
        )  # type: ignore[arg-type]
    return shape


_ATTR_TYPES = {t.value: t for t in AttributeType}


@functools.lru_cache(maxsize=4096)
def _tag(tag: Any, what: str) -> str:
    return normalize_tag(tag, what)


def _columnar(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    keys = list(rows[0])
    return {k: [r.get(k) for r in rows] for k in keys}


def _as_float(v: Any, set_tag: str, column: str) -> float | None:
    if v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        logger.warning("DLProv: %s.%s expects a number, got %r: stored as NULL", set_tag, column, v)
        return None


__all__ = ["QueryError", "Result", "Store"]
