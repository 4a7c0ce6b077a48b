"""The PROV sub-graph of an artifact's lineage (``dlprov lineage PATH --format ...``).

The documents of the runs that made or used the artifact are built as for ``dlprov prov
export`` and cut down to what matters to the artifact: everything it comes from (the
activities that generated it, what they used, their plans and agents, transitively), and what
came from it (the activities that used it and what they generated, transitively).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from prov.constants import PROV_N_MAP
from prov.identifier import QualifiedName
from prov.model import ProvDocument

from ..store.artifacts import ArtifactLineage
from ..store.schema import ELEMENT_ID, TRACE_ID
from .builder import build
from .namespaces import ID_URI
from .values import local_name

if TYPE_CHECKING:
    from ..store import Store

# relation -> which of its first two formal arguments is the "later" one (the one influenced)
_UPWARD = {
    "wasGeneratedBy", "used", "wasDerivedFrom", "wasInformedBy", "wasAssociatedWith",
    "wasAttributedTo", "actedOnBehalfOf", "wasStartedBy", "wasEndedBy", "wasInfluencedBy",
}


def element_uri(trace_id: str, element_id: str) -> str:
    """The URI the PROV builder gives the element ``(trace id, element id)``."""
    return ID_URI + "element/" + "-".join(local_name(str(p)) for p in (trace_id or "x", element_id))


def lineage_document(store: Store, lin: ArtifactLineage) -> ProvDocument:
    """The PROV sub-graph around the artifact in every run of ``lin``."""
    doc = ProvDocument()
    seeds: set[str] = set()
    for run in lin.runs:
        full = build(store, execution=run.execution.tag)
        doc.update(full)
        for use in run.uses:
            if use.element is not None:
                seeds.add(element_uri(str(use.element.get(TRACE_ID)), str(use.element.get(ELEMENT_ID))))
            else:  # the digest of the run's script: its recipe and software agent
                seeds.update(
                    str(r.identifier.uri) for r in full.get_records()
                    if r.is_element() and "/recipe/" in str(r.identifier.uri)
                )
    return cut(doc, seeds)


def cut(doc: ProvDocument, seeds: set[str]) -> ProvDocument:
    """The records of ``doc`` connected to ``seeds`` (URIs): their ancestors and descendants."""
    up: dict[str, set[str]] = defaultdict(set)
    down: dict[str, set[str]] = defaultdict(set)
    relations = []
    for r in doc.get_records():
        if not r.is_relation():
            continue
        name = PROV_N_MAP.get(r.get_type())
        args = [_uri(v) for _, v in r.formal_attributes]
        relations.append((r, args))
        if name not in _UPWARD or not args or args[0] is None:
            continue
        later = args[0]
        # the second argument and a plan (association) come before the first
        for earlier in [a for a in args[1:3] if a is not None]:
            up[later].add(earlier)
            down[earlier].add(later)
    keep = _closure(seeds, up) | _closure(seeds, down)
    # what the activities and entities kept come from: their plans and agents
    keep |= _closure(keep, up)
    out = ProvDocument()
    for ns in doc.namespaces:
        out.add_namespace(ns)
    for r in doc.get_records():
        if r.is_element() and str(r.identifier.uri) in keep:
            out.add_record(r)
    for r, args in relations:
        if all(a is None or a in keep for a in args[:3]):
            out.add_record(r)
    return out


def _closure(start: set[str], edges: dict[str, set[str]]) -> set[str]:
    seen = set(start)
    todo = list(start)
    while todo:
        node = todo.pop()
        for nxt in edges.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _uri(value: Any) -> str | None:
    if isinstance(value, QualifiedName):
        return str(value.uri)
    return None




def write_lineage(store: Store, lin: ArtifactLineage, formats: Any, out_dir: Any) -> list[Any]:
    """Write the sub-graph of ``lin`` as ``out_dir/lineage-<digest 12>.<ext>`` per format."""
    from pathlib import Path

    from . import FORMATS, parse_formats, write

    doc = lineage_document(store, lin)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [write(doc, out / f"lineage-{lin.digest[:12]}.{FORMATS[fmt]}", fmt) for fmt in parse_formats(formats)]


__all__ = ["cut", "element_uri", "lineage_document", "write_lineage"]
