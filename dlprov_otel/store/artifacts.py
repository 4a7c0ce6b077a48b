"""Start from an artifact: which runs made or used a file, and with what (``dlprov lineage``).

A file is known by its sha256. Every set relation that has a digest column (``sha256``,
``digest``, ``checksum``, ``fingerprint``, ``*_sha256``: saved models and checkpoints in
``otrainedmodel``, data in ``otrainset``/``otestset``, ...) is searched, and so is the recipe
of every run (``execution_recipe``: a script's digest). For each run that has the digest the
lineage rule (:mod:`.lineage`) walks from the task that made (or used) it to what went in: the
recipe, the parameters (elements of sets no task produces, such as ``itrainmodel``), the input
data and their digests, the epochs of the training, and the metrics of the tasks that used it.

The CLI (``dlprov lineage``), the dashboard (``/ui/api/lineage``) and the PROV sub-graph
(:mod:`dlprov_otel.prov.lineage`) read through here.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import DLProvError, QueryError
from ..model import DataflowSpec
from . import readmodel
from . import schema as S
from .lineage import Links, TaskNode, link
from .objects import Element, Execution
from .store import Store

DIGEST_NAMES = frozenset({"sha256", "digest", "checksum", "fingerprint"})
_HEX = re.compile(r"^[0-9a-f]{64}$")


class DigestError(DLProvError, ValueError):
    """Not a sha256 digest (64 hexadecimal characters)."""

    status = 400


def normalize_digest(text: str) -> str:
    """``HEX`` or ``sha256:HEX`` (any case) -> the 64 lower-case hex digits."""
    value = str(text).strip().lower()
    if value.startswith("sha256:"):
        value = value[len("sha256:"):]
    if not _HEX.match(value):
        raise DigestError(f"not a sha256 digest (64 hexadecimal characters): {text!r}")
    return value


def is_digest_column(name: str) -> bool:
    return name in DIGEST_NAMES or name.endswith(("_sha256", "_digest"))


def digest_columns(columns: Iterable[str]) -> list[str]:
    return [c for c in columns if is_digest_column(c)]


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def element_values(el: Element) -> dict[str, Any]:
    """An element's attribute values (NaN as ``None``), without the provenance columns."""
    return {c: _plain(v) for c, v in el.attributes()}


def element_digest(el: Element) -> str | None:
    for c, v in el.attributes():
        if is_digest_column(c) and isinstance(v, str) and v:
            return v[len("sha256:"):] if v.startswith("sha256:") else v
    return None


# --- the recipe of runs -------------------------------------------------------------------------
@dataclass(frozen=True)
class RecipeEntry:
    """One entry of a run's recipe (see :mod:`dlprov_otel.recipe`)."""

    execution_tag: str
    rank: int | None
    name: str
    value: str | None
    digest: str | None
    phase: str | None
    recorded_at: dt.datetime | None


_GROUPS = ("script.", "command", "cwd", "python.", "git.", "seed.", "env.", "package.")


def _entry_order(e: RecipeEntry) -> tuple:
    group = next((i for i, p in enumerate(_GROUPS) if e.name.startswith(p)), len(_GROUPS))
    return (e.rank if e.rank is not None else -1, group, e.name.lower())


def recipes(store: Store, tags: Sequence[str]) -> dict[str, list[RecipeEntry]]:
    """The recipe of each execution: the latest value of each name (per rank), in reading order."""
    latest: dict[tuple[str, Any, str], RecipeEntry] = {}
    tags = list(tags)
    for i in range(0, len(tags), 200):
        chunk = tags[i : i + 200]
        try:
            res = store.query(
                f"SELECT execution_tag, rank, name, value, digest, phase, recorded_at "
                f"FROM {store.cat(S.EXECUTION_RECIPE)} WHERE execution_tag IN ({', '.join('?' for _ in chunk)}) "
                "ORDER BY recorded_at",
                list(chunk),
            )
        except QueryError:  # a store written before recipes existed, opened read-only
            return {}
        for row in res.rows:
            e = RecipeEntry(*row)
            latest[(e.execution_tag, e.rank, e.name)] = e
    out: dict[str, list[RecipeEntry]] = defaultdict(list)
    for e in sorted(latest.values(), key=_entry_order):
        out[e.execution_tag].append(e)
    return dict(out)


# --- finding a digest ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Hit:
    """Where a digest is stored: a row of a set relation, or a run's recipe."""

    execution_tag: str
    dataflow_tag: str | None
    set_tag: str | None  # None for a recipe entry
    column: str
    span_id: str | None = None
    idx: int | None = None


def find(store: Store, digest: str) -> list[Hit]:
    """Every stored row that carries ``digest`` (normalized by :func:`normalize_digest`)."""
    digest = normalize_digest(digest)
    hits: list[Hit] = []
    for flow in readmodel.dataflow_tags(store):
        for set_tag, columns in readmodel.set_tables(store, flow).items():
            names = [c for c, _ in columns]
            cols = digest_columns(names)
            if not cols or S.EXECUTION_TAG not in names:
                continue
            table = S.qualified(flow, set_tag)
            where = " OR ".join(f"{S.quote_ident(c)} IN (?, ?)" for c in cols)
            params = [v for _ in cols for v in (digest, "sha256:" + digest)]
            sel = ", ".join(S.quote_ident(c) for c in cols)
            res = store.query(
                f"SELECT {S.EXECUTION_TAG}, {S.SPAN_ID}, {S.IDX}, {sel} FROM {table} WHERE {where}", params
            )
            wanted = (digest, "sha256:" + digest)
            for tag, span_id, idx, *values in res.rows:
                column = next((c for c, v in zip(cols, values, strict=False) if v in wanted), cols[0])
                hits.append(Hit(str(tag), flow, set_tag, column, span_id, idx))
    try:
        rows = store.query(
            f"SELECT DISTINCT execution_tag, name FROM {store.cat(S.EXECUTION_RECIPE)} "
            "WHERE digest = ? AND name <> 'script.sha256'",  # script.path carries the same digest
            [digest],
        ).rows
    except QueryError:
        rows = []
    for tag, name in rows:
        hits.append(Hit(str(tag), None, None, str(name)))
    return hits


# --- the lineage of an artifact -----------------------------------------------------------------
@dataclass
class ArtifactUse:
    """The artifact as one run recorded it: an element of a set, made or used by a task."""

    set_tag: str | None
    role: str  # output, input or recipe
    column: str
    task: TaskNode | None = None
    element: Element | None = None


@dataclass
class EpochSummary:
    set_tag: str
    count: int
    first: dict[str, Any]
    last: dict[str, Any]
    best: dict[str, Any] | None
    metric: str | None
    lower_is_better: bool


@dataclass
class RunLineage:
    """What one run did with the artifact, and what went into it."""

    execution: Execution
    uses: list[ArtifactUse] = field(default_factory=list)
    recipe: list[RecipeEntry] = field(default_factory=list)
    parameters: list[Element] = field(default_factory=list)
    inputs: list[Element] = field(default_factory=list)
    epochs: EpochSummary | None = None
    test_metrics: list[Element] = field(default_factory=list)


@dataclass
class ArtifactLineage:
    digest: str
    runs: list[RunLineage]

    @property
    def found(self) -> bool:
        return bool(self.runs)


def lineage(store: Store, digest: str) -> ArtifactLineage:
    """The runs that made or used the file whose sha256 is ``digest``, oldest first."""
    digest = normalize_digest(digest)
    hits = find(store, digest)
    by_run: dict[str, list[Hit]] = defaultdict(list)
    for h in hits:
        by_run[h.execution_tag].append(h)
    runs = []
    execs = {e.tag: e for tag in by_run for e in readmodel.executions(store, tag=tag)}
    recipe_of = recipes(store, list(by_run))
    for tag, run_hits in by_run.items():
        ex = execs.get(tag)
        if ex is None:  # rows of a run whose execution span is not stored (yet)
            ex = Execution(tag, run_hits[0].dataflow_tag, None, None, None, None, None, None, None, None, None, None)
        run = _run_lineage(store, ex, run_hits)
        run.recipe = recipe_of.get(tag, [])
        runs.append(run)
    runs.sort(key=lambda r: (r.execution.start_time or dt.datetime.max, r.execution.tag))
    return ArtifactLineage(digest, runs)


def _run_lineage(store: Store, ex: Execution, hits: list[Hit]) -> RunLineage:
    run = RunLineage(ex)
    flow = ex.dataflow_tag or next((h.dataflow_tag for h in hits if h.dataflow_tag), None)
    for h in hits:
        if h.set_tag is None:
            run.uses.append(ArtifactUse(None, "recipe", h.column))
    if flow is None:
        return run
    spec = readmodel.latest_spec(store, flow)
    elements: list[Element] = []
    for set_tag in readmodel.set_tags(store, flow, spec):
        elements.extend(readmodel.elements(store, flow, set_tag, [ex.tag]))
    links = link(spec, readmodel.tasks(store, [ex.tag]), readmodel.task_dependencies(store, [ex.tag]), elements)
    wanted = {(h.set_tag, h.span_id, h.idx): h for h in hits if h.set_tag is not None}
    found = [
        (el, wanted[key])
        for el in elements
        if (key := (el.set_tag, el.get(S.SPAN_ID), el.get(S.IDX))) in wanted
    ]
    seen_params: set[int] = set()
    seen_inputs: set[int] = set()
    for el, h in found:
        node, role = links.owner.get(id(el), (None, "output" if el.producer_task_id else "input"))
        run.uses.append(ArtifactUse(el.set_tag, role, h.column, node, el))
        if node is None:
            continue
        for inp in _upstream(links, node, skip=el):
            if _is_parameter(spec, inp.set_tag):
                if id(inp) not in seen_params:
                    seen_params.add(id(inp))
                    run.parameters.append(inp)
            elif id(inp) not in seen_inputs:
                seen_inputs.add(id(inp))
                run.inputs.append(inp)
        if role == "output" and run.epochs is None:
            run.epochs = _epochs(links, node, el.set_tag)
        for user in _users(links, el):
            for out in links.made.get(user, []):
                if "test" in out.set_tag and out not in run.test_metrics:
                    run.test_metrics.append(out)
    if not found:  # only the recipe has the digest: summarize the run
        run.parameters = [e for e in elements if _is_parameter(spec, e.set_tag)]
    return run


def _is_parameter(spec: DataflowSpec | None, set_tag: str) -> bool:
    """A set no transformation produces: values the script gave (hyperparameters, a split ratio)."""
    return spec is not None and not spec.producers_of(set_tag)


def _inputs_of(links: Links, task: TaskNode) -> list[Element]:
    out = list(links.given.get(task, []))
    for _set_tag, found in links.used.get(task, []):
        out.extend(found)
    return out


def _upstream(links: Links, start: TaskNode, skip: Element) -> list[Element]:
    """Every element that went into ``start``, and into the tasks that made those, transitively."""
    out: list[Element] = []
    seen_tasks = {id(start)}
    queue = [start]
    while queue:
        task = queue.pop(0)
        for el in _inputs_of(links, task):
            if el is skip:
                continue
            out.append(el)
            owner = links.owner.get(id(el))
            if owner is not None and owner[1] == "output" and id(owner[0]) not in seen_tasks:
                seen_tasks.add(id(owner[0]))
                queue.append(owner[0])
    return out


def _users(links: Links, el: Element) -> list[TaskNode]:
    """Tasks that were given ``el`` or used it (the lineage rule)."""
    return [t for t in links.tasks if any(x is el for x in _inputs_of(links, t))]


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not math.isnan(value) else math.inf


_LOWER = ("loss", "error", "mae", "mse", "rmse", "perplexity")


def _metric(rows: list[dict[str, Any]]) -> str | None:
    names = [c for c in rows[0] if c != "epoch" and any(isinstance(r.get(c), int | float) for r in rows)]
    for preferred in ("val_loss", "loss", "val_accuracy", "accuracy"):
        if preferred in names:
            return preferred
    return names[0] if names else None


def _epochs(links: Links, task: TaskNode, artifact_set: str) -> EpochSummary | None:
    """Count, first, last and best of the task's outputs that have an ``epoch`` column."""
    by_set: dict[str, list[Element]] = defaultdict(list)
    for el in links.made.get(task, []):
        if el.set_tag != artifact_set and "epoch" in el.values and element_digest(el) is None:
            by_set[el.set_tag].append(el)
    if not by_set:
        return None
    set_tag, els = max(by_set.items(), key=lambda kv: len(kv[1]))
    # emission times tie within a millisecond: the epoch keeps them in order
    els = sorted(els, key=lambda e: (e.emitted_at or dt.datetime.max, _number(e.get("epoch"))))
    rows = [element_values(e) for e in els]
    metric = _metric(rows)
    lower = bool(metric) and any(w in str(metric).lower() for w in _LOWER)
    scored = [r for r in rows if metric and isinstance(r.get(metric), int | float)]
    best = None
    if scored:
        best = (min if lower else max)(scored, key=lambda r: r[metric])
    return EpochSummary(set_tag, len(rows), rows[0], rows[-1], best, metric, lower)


# --- as JSON (the dashboard's /ui/api/lineage and `dlprov lineage --format json`) ------------------
def _iso(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return _plain(value)


def _values(el: Element) -> dict[str, Any]:
    return {k: _iso(v) for k, v in element_values(el).items()}


def as_json(lin: ArtifactLineage) -> dict[str, Any]:
    """The lineage as plain JSON values (the shape in the README's ``dlprov lineage``)."""
    runs = []
    for r in lin.runs:
        e = r.execution
        ep = r.epochs
        runs.append(
            {
                "execution": {
                    "tag": e.tag, "dataflow_tag": e.dataflow_tag, "status": e.status,
                    "start_time": _iso(e.start_time), "end_time": _iso(e.end_time), "scientist": e.scientist,
                },
                "artifacts": [
                    {
                        "set": u.set_tag, "role": u.role, "column": u.column,
                        "task": {"id": u.task.id, "dt_tag": u.task.dt_tag} if u.task is not None else None,
                        "values": _values(u.element) if u.element is not None else {},
                    }
                    for u in r.uses
                ],
                "recipe": [
                    {"name": x.name, "value": x.value, "digest": x.digest, "rank": x.rank} for x in r.recipe
                ],
                "hyperparameters": [{"set": p.set_tag, "values": _values(p)} for p in r.parameters],
                "inputs": [{"set": i.set_tag, "digest": element_digest(i), "values": _values(i)} for i in r.inputs],
                "epochs": None if ep is None else {
                    "set": ep.set_tag, "count": ep.count,
                    "first": {k: _iso(v) for k, v in ep.first.items()},
                    "last": {k: _iso(v) for k, v in ep.last.items()},
                    "best": None if ep.best is None else {
                        "metric": ep.metric, "lower_is_better": ep.lower_is_better,
                        "values": {k: _iso(v) for k, v in ep.best.items()},
                    },
                },
                "test_metrics": [{"set": t.set_tag, "values": _values(t)} for t in r.test_metrics],
            }
        )
    return {"digest": lin.digest, "found": lin.found, "runs": runs}


__all__ = [
    "ArtifactLineage",
    "ArtifactUse",
    "DigestError",
    "EpochSummary",
    "Hit",
    "RecipeEntry",
    "RunLineage",
    "as_json",
    "digest_columns",
    "element_digest",
    "find",
    "is_digest_column",
    "lineage",
    "normalize_digest",
    "recipes",
]
