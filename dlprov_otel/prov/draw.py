"""Draw a PROV document with Graphviz so a person can read it.

Nodes say what they are (``prov:label``: "trainmodel", "otrainmodel · epoch 3", "execution
mnist-…", the scientist's name) with a few key values underneath, not bare identifiers.
Colours and shapes follow the PROV convention: entities yellow ellipses, activities blue
rectangles, agents orange houses. A long run stays drawable: when one activity generated
(or used) many elements of one set, the first and last few are drawn and the rest folded
into a single "… N more" node, so 10,000 epochs make a picture of a few dozen nodes.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

from prov.constants import (
    PROV_ACTIVITY,
    PROV_AGENT,
    PROV_ASSOCIATION,
    PROV_ATTRIBUTION,
    PROV_COMMUNICATION,
    PROV_DERIVATION,
    PROV_ENTITY,
    PROV_GENERATION,
    PROV_USAGE,
)
from prov.identifier import QualifiedName
from prov.model import ProvDocument, ProvElement, ProvRecord

from ..store.schema import RESERVED_COLUMNS
from .errors import ProvExportError

NODE_STYLE: dict[Any, dict[str, str]] = {
    PROV_ENTITY: {"shape": "ellipse", "style": "filled", "fillcolor": "#FFFC87", "color": "#808080"},
    PROV_ACTIVITY: {"shape": "box", "style": "filled", "fillcolor": "#9FB1FC", "color": "#0000FF"},
    PROV_AGENT: {"shape": "house", "style": "filled", "fillcolor": "#FED37F", "color": "#808080"},
}
EDGE_STYLE: dict[Any, dict[str, str]] = {
    PROV_GENERATION: {"color": "darkgreen", "fontcolor": "darkgreen"},
    PROV_USAGE: {"color": "red4", "fontcolor": "red"},
    PROV_COMMUNICATION: {"color": "black"},
    PROV_ASSOCIATION: {"color": "#E0A030", "fontcolor": "#A06000"},
    PROV_ATTRIBUTION: {"color": "#E0A030", "fontcolor": "#A06000"},
    # Derivations repeat what used/wasGeneratedBy already show: drawn light, and left out of
    # the layout so they do not pull the picture apart.
    PROV_DERIVATION: {"color": "gray55", "fontcolor": "gray40", "style": "dashed", "constraint": "false"},
}
HEAD, TAIL = 3, 2  # elements kept at each end of a folded group
MAX_DETAILS = 4  # attribute lines under a node's label
# Attributes that identify a record rather than describe it (the store's provenance columns and
# the tags and ids the builder adds): left out of a node's lines.
IDENTIFYING_ATTRIBUTES = RESERVED_COLUMNS | {"ds_tag", "dt_tag", "exec_tag", "tag", "name", "hardware_id", "spec_hash"}


def _esc(text: str) -> str:
    """Text for inside a DOT double-quoted string (user text: no escape sequences survive)."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\r", " ").replace("\n", " ")


def _q(text: str | list[str]) -> str:
    """A DOT double-quoted string; a list becomes lines (escString ``\\n``)."""
    lines = [text] if isinstance(text, str) else text
    return '"' + "\\n".join(_esc(line) for line in lines) + '"'


def _attrs(style: dict[str, str]) -> str:
    return ", ".join(f"{k}={_q(v)}" for k, v in style.items())


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.4g}"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    text = str(getattr(value, "value", value))
    if "/" in text and len(text) > 32:
        text = "…/" + text.rstrip("/").rsplit("/", 1)[-1]
    return text if len(text) <= 40 else text[:39] + "…"


def _first(record: ProvRecord, name: str) -> Any:
    values = record.get_attribute(name)
    return next(iter(values)) if values else None


def _label(record: ProvElement) -> str:
    label = _first(record, "prov:label")
    return str(label) if label is not None else str(record.identifier)


def _details(record: ProvElement) -> list[str]:
    lines: list[str] = []
    kind = record.get_type()
    if kind == PROV_ACTIVITY:
        start, end = record.get_startTime(), record.get_endTime()
        if start is not None and end is not None:
            secs = (end - start).total_seconds()
            lines.append(f"{start:%Y-%m-%d %H:%M:%S} · {secs:.3g} s")
        elif start is not None:
            lines.append(f"started {start:%Y-%m-%d %H:%M:%S}")
        status = _first(record, "dlprov:status")
        if status and status != "FINISHED":
            lines.append(str(status))
        return lines
    if kind == PROV_AGENT:
        return lines
    for name, value in record.extra_attributes:
        if not isinstance(name, QualifiedName) or name.namespace.prefix == "prov":
            continue
        if name.localpart in IDENTIFYING_ATTRIBUTES or (name.localpart == "epoch" and "epoch" in _label(record)):
            continue
        lines.append(f"{name.localpart} = {_value_text(value)}")
        if len(lines) == MAX_DETAILS:
            break
    return lines


def _node_text(record: ProvElement) -> list[str]:
    return [_label(record), *_details(record)]


def _endpoints(record: ProvRecord) -> tuple[QualifiedName | None, QualifiedName | None]:
    formal = record.formal_attributes
    first = formal[0][1] if formal else None
    second = formal[1][1] if len(formal) > 1 else None
    return first, second


def _fold(doc_records: list[ProvRecord], elements: dict[QualifiedName, ProvElement]) -> dict[Any, Any]:
    """Map element ids to drawn node ids, folding large groups of same-set elements that one
    activity generated or used."""
    groups: dict[tuple[Any, str, Any], list[QualifiedName]] = defaultdict(list)
    grouped: set[QualifiedName] = set()
    for rec in doc_records:
        kind = rec.get_type()
        if kind not in (PROV_GENERATION, PROV_USAGE):
            continue
        a, b = _endpoints(rec)
        entity, activity = (a, b) if kind == PROV_GENERATION else (b, a)
        if entity in grouped or entity not in elements:
            continue
        ds_tag = _first(elements[entity], "dlprov:ds_tag") or ""
        groups[(activity, str(ds_tag), kind)].append(entity)
        grouped.add(entity)
    mapping: dict[Any, Any] = {}
    for (activity, ds_tag, _kind), members in groups.items():
        if len(members) <= HEAD + TAIL + 1:
            continue
        folded = members[HEAD : len(members) - TAIL]
        key = ("fold", activity, ds_tag, _kind)
        for m in folded:
            mapping[m] = key
        mapping[key] = f"… {len(folded):,} more {ds_tag or 'entities'}"
    return mapping


def to_dot(doc: ProvDocument, title: str | None = None) -> str:
    """The DOT text of ``doc``."""
    flat = doc.flattened() if doc.has_bundles() else doc
    records = list(flat.get_records())
    elements = {r.identifier: r for r in records if r.is_element() and r.identifier is not None}
    fold = _fold(records, elements)
    ids: dict[Any, str] = {}

    def node_id(key: Any) -> str:
        target = fold.get(key, key)
        if target not in ids:
            ids[target] = f"n{len(ids)}"
        return ids[target]

    lines = [
        "digraph prov {",
        "  graph [rankdir=BT, fontname=Helvetica, nodesep=0.3, ranksep=0.5, charset=\"UTF-8\""
        + (f", label={_q(title)}, labelloc=t" if title else "")
        + "];",
        "  node [fontname=Helvetica, fontsize=11];",
        "  edge [fontname=Helvetica, fontsize=9];",
    ]
    drawn: set[str] = set()
    for ident, rec in elements.items():
        nid = node_id(ident)
        if nid in drawn:
            continue
        drawn.add(nid)
        target = fold.get(ident)
        style = dict(NODE_STYLE.get(rec.get_type(), NODE_STYLE[PROV_ENTITY]))
        if target is not None:
            style["style"] = "filled,dashed"
            text = [fold[target]]
        else:
            text = _node_text(rec)
        lines.append(f"  {nid} [{_attrs(style)}, label={_q(text)}, tooltip={_q(str(ident))}];")
    used: set[tuple[Any, Any]] = set()
    generated: set[tuple[Any, Any]] = set()
    for rec in records:
        if rec.get_type() == PROV_USAGE:
            used.add(_endpoints(rec))
        elif rec.get_type() == PROV_GENERATION:
            generated.add(_endpoints(rec))
    edges: set[tuple[str, str, str]] = set()
    for rec in records:
        if not rec.is_relation():
            continue
        a, b = _endpoints(rec)
        if a is None or b is None:
            continue
        if rec.get_type() == PROV_DERIVATION:
            activity = _first(rec, "prov:activity")
            if activity is not None and (activity, b) in used and (a, activity) in generated:
                continue  # implied by used + wasGeneratedBy of its activity: not drawn
        for end in (a, b):
            if end not in elements:  # a relation to an undeclared element still gets a node
                nid = node_id(end)
                if nid not in drawn:
                    drawn.add(nid)
                    lines.append(f"  {nid} [shape=ellipse, color=gray, label={_q(str(end))}];")
        src, dst = node_id(a), node_id(b)
        name = _relation_name(rec)
        if (src, dst, name) in edges:
            continue
        edges.add((src, dst, name))
        style = {"label": name, **EDGE_STYLE.get(rec.get_type(), {})}
        lines.append(f"  {src} -> {dst} [{_attrs(style)}];")
    # the plan of an association (a run's recipe) hangs off its activity, unless already linked
    linked = {(s, d) for s, d, _ in edges}
    for rec in records:
        plan = _first(rec, "prov:plan") if rec.get_type() == PROV_ASSOCIATION else None
        activity = _endpoints(rec)[0]
        if plan is None or activity is None or plan not in elements:
            continue
        src, dst = node_id(activity), node_id(plan)
        if (src, dst) not in linked:
            linked.add((src, dst))
            style = {"label": "hadPlan", "style": "dashed", **EDGE_STYLE[PROV_ASSOCIATION]}
            lines.append(f"  {src} -> {dst} [{_attrs(style)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _relation_name(rec: ProvRecord) -> str:
    from prov.constants import PROV_N_MAP

    return PROV_N_MAP.get(rec.get_type(), str(rec.get_type()))


def dot_executable() -> str:
    exe = os.environ.get("DLPROV_DOT") or shutil.which("dot")
    if not exe:
        raise ProvExportError("drawing PNG/SVG needs Graphviz: install it so that 'dot' is on PATH")
    return exe


def render(doc: ProvDocument, path: str | os.PathLike[str], fmt: str = "png", title: str | None = None) -> Path:
    """Draw ``doc`` into ``path`` as ``png`` or ``svg`` (Graphviz ``dot``)."""
    if fmt not in ("png", "svg"):
        raise ProvExportError(f"cannot draw {fmt!r}: use png or svg")
    out = Path(path)
    text = to_dot(doc, title)
    try:
        res = subprocess.run(
            [dot_executable(), f"-T{fmt}", "-o", str(out)],
            input=text.encode("utf-8"),
            capture_output=True,
            timeout=600,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ProvExportError(f"Graphviz took more than 10 minutes to draw {out}") from None
    if res.returncode != 0:
        raise ProvExportError(f"Graphviz failed to draw {out}: {res.stderr.decode(errors='replace')[-2000:]}")
    return out
