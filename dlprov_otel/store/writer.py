"""The store's writer: turns span records into catalog rows and set relations.

Writes are bulk (one append per set relation and batch) and idempotent on
(trace id, span id). Catalog rows for executions and tasks are merged, so the short marker
spans and the long spans they belong to may arrive in any order. The caller holds the
connection's lock and commits or rolls back.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from .. import semconv
from ..errors import SpecError
from ..model import AttributeType, DataflowSpec
from ..records import SpanRecord
from . import schema as S
from .backends import Backend, EmbeddedBackend
from .recipes import recipe_columns
from .rows import (
    FINAL,
    Group,
    as_float,
    columnar,
    merge_row,
    shape,
    tag,
    ts,
    upsert,
    utc_now,
)
from .seen import SeenIndex

# Order of the provenance values in a dataset row tuple, before the attribute values.
_ROW_COLUMNS = (
    S.TASK_ID,
    S.PRODUCER_TASK_ID,
    S.CONSUMER_TASK_ID,
    S.EXECUTION_TAG,
    S.RANK,
    S.EMITTED_AT,
    S.TRACE_ID,
    S.SPAN_ID,
    S.ELEMENT_ID,
    S.IDX,
)
_FLOAT_TYPES = ("double", "real", "float")


_ATTRIBUTE_ROWS = 500  # rows per INSERT into the attribute catalog

class Writer:
    """Writes records into one store's connection; keeps the columns and specs it has seen."""

    def __init__(self, backend: Backend, schema: str) -> None:
        self.backend = backend
        self.schema = schema
        self._columns: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self._specs: dict[str, DataflowSpec] = {}
        exclusive = isinstance(backend, EmbeddedBackend) and not backend.shared  # the store's only writer
        self.seen = SeenIndex(self._fetch, self.cat(S.SPAN_LOG), exclusive)

    def create_catalog(self) -> None:
        for stmt in S.catalog_statements(self.schema):
            self.backend.execute(stmt)
        for table, column, sql_type in S.ADDED_COLUMNS:  # a store made before these columns existed
            if column not in {c for c, _ in S.table_columns(self._fetch, self.schema, table)}:
                self.backend.execute(f"ALTER TABLE {self.cat(table)} ADD COLUMN {S.quote_ident(column)} {sql_type}")

    def forget(self) -> None:
        """Drop the caches (after a rollback: DDL may have been rolled back with the batch)."""
        self._columns.clear()
        self._specs.clear()
        self.seen.forget()

    def cat(self, table: str) -> str:
        return S.qualified(self.schema, table)

    def _fetch(self, sql: str, params: Sequence[Any] | None = None) -> tuple[list[str], list[tuple]]:
        return self.backend.fetch(sql, params)

    # -- a batch ----------------------------------------------------------------------------
    def write(self, records: Sequence[SpanRecord]) -> int:
        """Store the records not seen before; returns how many were new."""
        return len(self.write_keys(records))

    def write_keys(self, records: Sequence[SpanRecord]) -> set[tuple[str, str]]:
        """Store the records not seen before; returns their (trace id, span id) keys."""
        fresh = self._drop_seen(records)
        if not fresh:
            return set()
        by_kind: dict[str, list[SpanRecord]] = defaultdict(list)
        for r in fresh:
            by_kind[r.kind or ""].append(r)
        for r in by_kind.get(semconv.KIND_DATAFLOW, []):
            spec = DataflowSpec.from_json(r.attributes[semconv.DATAFLOW_SPEC])
            self.ensure_dataflow(spec, created_ns=r.end_ns, trace_id=r.trace_id, span_id=r.span_id)
        self._executions(by_kind.get(semconv.KIND_EXECUTION_START, []) + by_kind.get(semconv.KIND_EXECUTION, []))
        self._tasks(by_kind.get(semconv.KIND_TASK_STATE, []) + by_kind.get(semconv.KIND_TASK, []))
        self._datasets(by_kind.get(semconv.KIND_DATASET, []))
        if recipes := by_kind.get(semconv.KIND_RECIPE):
            self._append(self.schema, S.EXECUTION_RECIPE, *recipe_columns(recipes))
        now = utc_now()
        self._append(
            self.schema,
            S.SPAN_LOG,
            {
                "trace_id": [r.trace_id for r in fresh],
                "span_id": [r.span_id for r in fresh],
                "kind": [r.kind for r in fresh],
                "received_at": [now] * len(fresh),
            },
            len(fresh),
        )
        return {(r.trace_id, r.span_id) for r in fresh}

    def _drop_seen(self, records: Sequence[SpanRecord]) -> list[SpanRecord]:
        return self.seen.drop_seen(records)

    def committed(self, keys: Iterable[tuple[str, str]]) -> None:
        """These spans were just committed (see :class:`SeenIndex`)."""
        self.seen.committed(keys)

    # -- dataflows --------------------------------------------------------------------------
    def current_spec(self, dataflow: str) -> DataflowSpec | None:
        if dataflow in self._specs:
            return self._specs[dataflow]
        _, rows = self._fetch(
            f"SELECT spec FROM {self.cat(S.DATAFLOW_VERSION)} WHERE dataflow_tag = ? ORDER BY version DESC LIMIT 1",
            [dataflow],
        )
        if not rows:
            return None
        self._specs[dataflow] = DataflowSpec.from_json(rows[0][0])
        return self._specs[dataflow]

    def ensure_dataflow(
        self, spec: DataflowSpec, created_ns: int | None = None, trace_id: str | None = None, span_id: str | None = None
    ) -> int:
        """Record a dataflow version (merged with what is stored) and create its relations."""
        old = self.current_spec(spec.tag)
        merged = old.merged_with(spec) if old else spec
        now = ts(created_ns) or utc_now()
        execute = self.backend.execute
        if old is not None and merged.hash == old.hash:
            _, rows = self._fetch(f"SELECT version FROM {self.cat(S.DATAFLOW)} WHERE tag = ?", [spec.tag])
            return int(rows[0][0])
        _, rows = self._fetch(f"SELECT id, version FROM {self.cat(S.DATAFLOW)} WHERE tag = ?", [spec.tag])
        if rows:
            version = int(rows[0][1]) + 1
            execute(
                f"UPDATE {self.cat(S.DATAFLOW)} SET version = ?, spec_hash = ?, updated_at = ? WHERE tag = ?",
                [version, merged.hash, now, spec.tag],
            )
        else:
            version = 1
            _, idrows = self._fetch(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {self.cat(S.DATAFLOW)}")
            execute(
                f"INSERT INTO {self.cat(S.DATAFLOW)} (id, tag, version, spec_hash, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [int(idrows[0][0]), spec.tag, version, merged.hash, now, now],
            )
        execute(
            f"INSERT INTO {self.cat(S.DATAFLOW_VERSION)} "
            "(dataflow_tag, version, spec_hash, spec, created_at, trace_id, span_id) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [spec.tag, version, merged.hash, merged.to_json(), now, trace_id, span_id],
        )
        old_t = {t["tag"] for t in old.transformations} if old else set()
        for t in merged.transformations:
            if t["tag"] not in old_t:
                execute(
                    f"INSERT INTO {self.cat(S.DATA_TRANSFORMATION)} (dataflow_tag, tag, version_added) "
                    "VALUES (?, ?, ?)",
                    [spec.tag, t["tag"], version],
                )
        old_deps = _dependencies(old) if old else set()
        for ds, prev, nxt in sorted(_dependencies(merged) - old_deps, key=str):
            execute(
                f"INSERT INTO {self.cat(S.DATA_DEPENDENCY)} "
                "(dataflow_tag, ds_tag, previous_dt_tag, next_dt_tag, version_added) "
                "VALUES (?, ?, ?, ?, ?)",
                [spec.tag, ds, prev, nxt, version],
            )
        execute(S.create_schema(spec.tag))
        for s in merged.sets.values():
            if old is None or s["tag"] not in old.sets:
                execute(
                    f"INSERT INTO {self.cat(S.DATA_SET)} (dataflow_tag, tag, version_added) VALUES (?, ?, ?)",
                    [spec.tag, s["tag"], version],
                )
            attrs = [(a["name"], AttributeType(a["type"]), bool(a.get("optional"))) for a in s["attributes"]]
            self.ensure_set_table(spec.tag, s["tag"], attrs, declared=True)
        self._specs[spec.tag] = merged
        return version

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
            self.backend.execute(S.create_schema(dataflow))
            self.backend.execute(S.create_set_table(dataflow, set_tag, [(n, t) for n, t, _ in attributes]))
            self._columns.pop((dataflow, set_tag), None)
            cols = self.table_columns(dataflow, set_tag)
            new = attributes
            start = 0
        else:
            have = {c for c, _ in cols}
            new = [a for a in attributes if a[0] not in have]
            for name, t, _ in new:
                self.backend.execute(S.add_column(dataflow, set_tag, name, t))
            if not new:  # the common case, a batch of rows: no statement at all
                return cols
            self._columns.pop((dataflow, set_tag), None)
            cols = self.table_columns(dataflow, set_tag)
            _, rows = self._fetch(
                f"SELECT COALESCE(MAX(ordinal), -1) + 1 FROM {self.cat(S.ATTRIBUTE)} "
                "WHERE dataflow_tag = ? AND ds_tag = ?",
                [dataflow, set_tag],
            )
            start = int(rows[0][0])
        if new:
            _, known = self._fetch(
                f"SELECT name FROM {self.cat(S.ATTRIBUTE)} WHERE dataflow_tag = ? AND ds_tag = ?", [dataflow, set_tag]
            )
            known_names = {k[0] for k in known}
            rows = [
                [dataflow, set_tag, name, t.value, start + i, optional, declared]
                for i, (name, t, optional) in enumerate(a for a in new if a[0] not in known_names)
            ]
            # multi-row INSERTs: one statement per row made 10,000 attributes superlinear
            for i in range(0, len(rows), _ATTRIBUTE_ROWS):
                chunk = rows[i : i + _ATTRIBUTE_ROWS]
                self.backend.execute(
                    f"INSERT INTO {self.cat(S.ATTRIBUTE)} "
                    "(dataflow_tag, ds_tag, name, type, ordinal, optional, declared) VALUES "
                    + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(chunk)),
                    [v for row in chunk for v in row],
                )
        return cols

    def table_columns(self, schema: str, table: str) -> list[tuple[str, str]]:
        key = (schema, table)
        if key not in self._columns:
            cols = S.table_columns(self._fetch, schema, table)
            if not cols:
                return []
            self._columns[key] = cols
        return self._columns[key]

    # -- executions -------------------------------------------------------------------------
    def _executions(self, records: list[SpanRecord]) -> None:
        if not records:
            return
        merged: dict[str, dict[str, Any]] = {}
        processes: list[dict[str, Any]] = []
        hardware: dict[str, dict[str, Any]] = {}
        for r in sorted(records, key=lambda x: (x.kind == semconv.KIND_EXECUTION, x.end_ns)):
            exec_tag = str(r.attributes.get(semconv.EXECUTION_TAG, ""))
            hw_id, hw = _hardware(r)
            hardware[hw_id] = hw
            status = r.attributes.get(semconv.EXECUTION_STATUS)
            final = r.kind == semconv.KIND_EXECUTION
            if final and not status:
                status = semconv.FAILED if r.status_code == "ERROR" else semconv.FINISHED
            row = {
                "tag": exec_tag,
                "dataflow_tag": r.attributes.get(semconv.DATAFLOW_TAG),
                "status": status or semconv.RUNNING,
                "start_time": ts(r.start_ns),
                "end_time": ts(r.end_ns) if final else None,
                "scientist": r.attributes.get(semconv.EXECUTION_SCIENTIST),
                "hardware_id": hw_id,
                "service_name": r.attr(semconv.SERVICE_NAME),
                "trace_id": r.trace_id,
                "span_id": r.span_id if final else (r.parent_span_id or r.span_id),
                "world_size": r.attributes.get(semconv.WORLD_SIZE),
                "error": r.attributes.get(semconv.EXECUTION_ERROR) or (r.status_message or None),
                "name": r.attributes.get(semconv.EXECUTION_NAME),
            }
            if r.kind == semconv.KIND_EXECUTION_START:
                processes.append(
                    {
                        "execution_tag": exec_tag,
                        "trace_id": r.trace_id,
                        "rank": r.attributes.get(semconv.RANK),
                        "world_size": r.attributes.get(semconv.WORLD_SIZE),
                        "pid": r.attr(semconv.PROCESS_PID),
                        "hardware_id": hw_id,
                        "scientist": row["scientist"],
                        "started_at": row["start_time"],
                    }
                )
            merged[exec_tag] = merge_row(merged.get(exec_tag), row)
        self._upsert(S.DATAFLOW_EXECUTION, ["tag"], list(merged.values()))
        if processes:
            self._append(self.schema, S.EXECUTION_PROCESS, columnar(processes), len(processes))
        self._upsert(S.HARDWARE, ["id"], list(hardware.values()), keep_existing=True)

    def _upsert(self, table: str, keys: list[str], rows: list[dict[str, Any]], keep_existing: bool = False) -> None:
        cols = [c for c, _ in self.table_columns(self.schema, table)]
        upsert(self.backend, self.cat(table), cols, keys, rows, keep_existing)

    # -- tasks ------------------------------------------------------------------------------
    def _tasks(self, records: list[SpanRecord]) -> None:
        if not records:
            return
        merged: dict[tuple, dict[str, Any]] = {}
        deps: list[dict[str, Any]] = []
        for r in sorted(records, key=lambda x: (x.kind == semconv.KIND_TASK, x.end_ns)):
            a = r.attributes
            status = a.get(semconv.TASK_STATUS)
            final = r.kind == semconv.KIND_TASK
            if final and status not in FINAL:
                status = semconv.FAILED if r.status_code == "ERROR" else semconv.FINISHED
            row = {
                "id": str(a.get(semconv.TASK_ID)),
                "execution_tag": str(a.get(semconv.EXECUTION_TAG, "")),
                "dataflow_tag": a.get(semconv.DATAFLOW_TAG),
                "dt_tag": a.get(semconv.TRANSFORMATION_TAG),
                "status": status or semconv.RUNNING,
                "start_time": ts(r.start_ns),
                "end_time": ts(r.end_ns) if final else None,
                "duration": (r.end_ns - r.start_ns) / 1e9 if final else None,
                "rank": a.get(semconv.RANK),
                "trace_id": r.trace_id,
                "span_id": r.span_id if final else r.parent_span_id,
                "error": a.get(semconv.TASK_ERROR) or (r.status_message or None),
            }
            key = (row["execution_tag"], row["dt_tag"], row["id"])
            merged[key] = merge_row(merged.get(key), row)
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
        self._upsert(S.TASK, ["execution_tag", "dt_tag", "id"], list(merged.values()))
        if deps:
            self._append(self.schema, S.TASK_DEPENDENCY, columnar(deps), len(deps))

    # -- datasets ---------------------------------------------------------------------------
    def _datasets(self, records: list[SpanRecord]) -> None:
        # Rows are gathered as tuples per (relation, attribute list) and transposed into columns
        # at the end: per span this is a handful of lookups and one tuple (the hot path).
        groups: dict[tuple[str, str, tuple[str, ...]], Group] = {}
        known: dict[tuple[Any, ...], Group] = {}  # a span's raw tags and lists -> its group
        c = semconv
        for r in records:
            get = r.attributes.get
            raw = (get(c.DATAFLOW_TAG, ""), get(c.DATASET_TAG, ""), get(c.DATASET_ATTRIBUTES, ()),
                   get(c.DATASET_TYPES, ()))
            try:
                group = known.get(raw)
            except TypeError:  # a list among them: normalized each time
                group = None
            if group is None:
                found = shape(tuple(raw[2]), tuple(raw[3]), r.span_id)
                key = (tag(raw[0], "dataflow tag"), tag(raw[1], "set tag"), found.names)
                group = groups.get(key)
                if group is None:
                    group = groups[key] = Group(found)
                with contextlib.suppress(TypeError):
                    known[raw] = group
            n = int(get(c.DATASET_ELEMENTS, 0))
            if n <= 0:
                continue
            task_id = get(c.TASK_ID)
            task_id = None if task_id is None else str(task_id)
            role = get(c.DATASET_ROLE)
            base = (
                task_id,
                task_id if role == "OUTPUT" else None,
                task_id if role == "INPUT" else None,
                get(c.EXECUTION_TAG),
                get(c.RANK),
                r.end_ns,
                r.trace_id,
                r.span_id,
            )
            keys = group.shape.keys
            if n == 1:  # the usual emission: one element, each value a 1-list (or a scalar)
                group.rows.append((*base, r.span_id + "-0", 0, *[
                    (v[0] if v else None) if isinstance(v := get(k), list | tuple) else v for k in keys]))
            else:
                values = [v if isinstance(v, list | tuple) else (v,) for v in map(get, keys)]
                for i in range(n):
                    group.rows.append((*base, f"{r.span_id}-{i}", i, *[v[i] if i < len(v) else None for v in values]))
        tables: dict[tuple[str, str], list[Group]] = {}
        for (dataflow, set_tag, _), group in groups.items():
            tables.setdefault((dataflow, set_tag), []).append(group)
        for (dataflow, set_tag), parts in tables.items():
            self._write_relation(dataflow, set_tag, parts)

    def _write_relation(self, dataflow: str, set_tag: str, parts: list[Group]) -> None:
        declared = self._declared(dataflow, set_tag)
        names = {name for g in parts for name in g.shape.names}
        if not names <= declared.keys():
            raise SpecError(undeclared(dataflow, set_tag, names - declared.keys()))
        table_cols = self.ensure_set_table(dataflow, set_tag, [(n, declared[n], True) for n in sorted(names)], True)
        total = sum(len(g.rows) for g in parts)
        if not total:
            return
        data: dict[str, list[Any]] = {c: [] for c, _ in table_cols}
        for g in parts:
            columns = dict(zip(_ROW_COLUMNS + g.shape.names, zip(*g.rows, strict=True), strict=True))
            for c in data:
                col = columns.get(c)
                data[c].extend(col if col is not None else [None] * len(g.rows))
        for c, t in table_cols:
            values = data[c]
            if t in _FLOAT_TYPES and not all(v is None or type(v) is float for v in values):
                data[c] = [as_float(v, set_tag, c) for v in values]
            elif (
                t not in S.NUMERIC_TYPES
                and t not in ("timestamp", "boolean")
                and not all(v is None or type(v) is str for v in values)
            ):
                data[c] = [None if v is None else str(v) for v in values]
        self.backend.append(dataflow, set_tag, table_cols, data, total)

    def _declared(self, dataflow: str, set_tag: str) -> dict[str, AttributeType]:
        """The attributes of a set in the stored specification of its dataflow."""
        spec = self.current_spec(dataflow)
        if spec is None:
            raise SpecError(no_spec(dataflow))
        return spec.attributes_of(set_tag)

    def _append(self, schema: str, table: str, data: dict[str, list[Any]], n: int) -> None:
        cols = self.table_columns(schema, table)
        full = {c: data.get(c, [None] * n) for c, _ in cols}
        self.backend.append(schema, table, cols, full, n)


def no_spec(dataflow: str) -> str:
    return (f"dataflow {dataflow!r} has no specification in this store: its relations are created only from its "
            "specification (Dataflow.save() sends it before the first task)")


def undeclared(dataflow: str, set_tag: str, names: Iterable[str]) -> str:
    """Why a row with attributes its set does not declare is refused."""
    return (f"set {set_tag!r} of dataflow {dataflow!r} has no attribute(s) {sorted(names)} in its specification: a "
            "dataflow's columns change only through its specification; declare them (a new version of the dataflow) "
            "before rows that carry them")


def _dependencies(spec: DataflowSpec) -> set[tuple[str, str | None, str | None]]:
    deps: set[tuple[str, str | None, str | None]] = set()
    for ds in spec.sets:
        producers = spec.producers_of(ds) or [None]
        consumers = spec.consumers_of(ds) or [None]
        for p in producers:
            for c in consumers:
                deps.add((ds, p, c))
    return deps


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
