"""Load W3C PROV documents into Neo4j with the official driver, additively.

Nodes are labelled ``Entity``, ``Activity`` or ``Agent``, plus their PROV type where it names
a kind (``Plan``, ``Person``, ``Hardware``, ``Execution``, ``Task``, ``TrainedModel``), and keyed
by an ``id`` property holding the qualified identifier (``dlid:task/...``), under uniqueness
constraints. Relationships are named after PROV (``used``, ``wasGeneratedBy``,
``wasInformedBy``, ``wasDerivedFrom``, ``wasAssociatedWith``, ``wasAttributedTo``, ...).
Properties keep their PROV names (``dlprov:loss``, ``prov:label``) and types: numbers stay
numbers, and times (``prov:startTime``, ``prov:endTime``, ``prov:time``) are Neo4j
``DATETIME`` values. Writes are batched ``UNWIND`` + ``MERGE``: loading a document twice
changes nothing, and loading another execution adds to the graph without wiping it.

The seed's queries work as written. Its "complete path" query, ``MATCH p = (a {ds_tag:
'otestmodel'})-[*]-(b {ds_tag: 'iinputdataset'}) RETURN p``, enumerates every undirected trail,
and this graph also holds lineage (``wasDerivedFrom``), task dependencies and agents: add
``LIMIT``, or follow the lineage directed, ``-[:used|wasGeneratedBy*]->`` (every route, as
a handful of paths) or ``-[:wasDerivedFrom*]->``.

Command line (a ``dlprov`` plugin)::

    dlprov neo4j load (--execution TAG | --dataflow TAG | --file DOC.json) [--store URL]
                      [--uri bolt://...] [--user neo4j] [--password ...] [--database neo4j]
    dlprov neo4j serve [--port N] [--data DIR] [--password ...]
    dlprov neo4j stop
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import DLProvError

if TYPE_CHECKING:
    from prov.model import ProvDocument

DEFAULT_URI = "bolt://localhost:7687"
DEFAULT_USER = "neo4j"
BATCH_SIZE = 2000
BASE_LABELS = ("Entity", "Activity", "Agent")
_LABEL = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
# PROV-DM relation -> (label of its subject, label of its object)
_ENDPOINTS: dict[str, tuple[str | None, str | None]] = {
    "used": ("Activity", "Entity"),
    "wasGeneratedBy": ("Entity", "Activity"),
    "wasInformedBy": ("Activity", "Activity"),
    "wasDerivedFrom": ("Entity", "Entity"),
    "wasAssociatedWith": ("Activity", "Agent"),
    "wasAttributedTo": ("Entity", "Agent"),
    "actedOnBehalfOf": ("Agent", "Agent"),
    "wasStartedBy": ("Activity", "Entity"),
    "wasEndedBy": ("Activity", "Entity"),
    "wasInvalidatedBy": ("Entity", "Activity"),
    "specializationOf": ("Entity", "Entity"),
    "alternateOf": ("Entity", "Entity"),
    "hadMember": ("Entity", "Entity"),
    "mentionOf": ("Entity", "Entity"),
    "wasInfluencedBy": (None, None),
}


class Neo4jLoadError(DLProvError):
    """Neo4j cannot be reached, refuses the credentials, or the document cannot be loaded."""


# ----------------------------------------------------------------------------- conversion


def _prop_value(value: Any) -> Any:
    """A PROV attribute value as a Neo4j property value (numbers stay numbers)."""
    from prov.identifier import Identifier
    from prov.model import Literal

    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, Identifier):  # QualifiedName (prov:type values, references)
        return str(value)
    if isinstance(value, Literal):
        kind = value.datatype.localpart if value.datatype is not None else ""
        text = value.value
        try:
            if kind in ("double", "float", "decimal"):
                return float(text)
            if kind in ("int", "integer", "long", "short", "byte") or kind.endswith("Integer"):
                return int(text)
            if kind == "boolean":
                return text.strip().lower() in ("true", "1")
        except ValueError:
            pass
        return str(text)
    return str(value)


def _props(pairs: Iterable[tuple[Any, Any]]) -> dict[str, Any]:
    grouped: dict[str, list[Any]] = defaultdict(list)
    for key, value in pairs:
        if value is None:
            continue
        converted = _prop_value(value)
        if converted is not None:
            grouped[str(key)].append(converted)
    out: dict[str, Any] = {}
    for key, values in grouped.items():
        if len(values) == 1:
            out[key] = values[0]
        elif len({type(v) for v in values}) == 1:  # Neo4j lists must be homogeneous
            out[key] = sorted(values) if not isinstance(values[0], dt.datetime) else values
        else:
            out[key] = sorted(str(v) for v in values)
    return out


def _extra_labels(record: Any, base: str) -> list[str]:
    labels = []
    for value in record.get_attribute("prov:type"):
        local = getattr(value, "localpart", None)
        prefix = getattr(getattr(value, "namespace", None), "prefix", None)
        if local and prefix in ("prov", "dlprov") and _LABEL.match(local) and local not in BASE_LABELS:
            labels.append(local)
    return sorted(set(labels) - {base})


def graph_of(document: ProvDocument) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """Nodes (``id``, ``base`` label, extra ``labels``, ``props``) and relationships by type
    (``src``, ``dst``, ``props``), de-duplicated as MERGE would."""
    from prov.constants import PROV_ACTIVITY, PROV_AGENT, PROV_ENTITY, PROV_N_MAP

    doc = document.flattened() if document.has_bundles() else document
    base_of = {PROV_ENTITY: "Entity", PROV_ACTIVITY: "Activity", PROV_AGENT: "Agent"}
    nodes: dict[tuple[str, str], dict[str, Any]] = {}
    kinds: dict[str, str] = {}
    relations: dict[str, dict[tuple[str, str], dict[str, Any]]] = defaultdict(dict)
    for rec in doc.get_records():
        if rec.is_element():
            base = base_of.get(rec.get_type())
            if base is None or rec.identifier is None:
                continue
            ident = str(rec.identifier)
            key = (base, ident)
            props = _props(rec.attributes)
            node = nodes.get(key)
            if node is None:
                nodes[key] = {"id": ident, "base": base, "labels": _extra_labels(rec, base), "props": props}
            else:  # the same element stated twice: merge what both say
                node["props"].update(props)
                node["labels"] = sorted(set(node["labels"]) | set(_extra_labels(rec, base)))
            kinds.setdefault(ident, base)
    for rec in doc.get_records():
        if not rec.is_relation():
            continue
        name = PROV_N_MAP.get(rec.get_type())
        if name not in _ENDPOINTS:
            continue
        formal = rec.formal_attributes
        src, dst = formal[0][1], formal[1][1] if len(formal) > 1 else None
        if src is None or dst is None:
            continue
        props = _props((k, v) for k, v in rec.attributes if k not in (formal[0][0], formal[1][0]))
        if rec.identifier is not None:
            props["id"] = str(rec.identifier)
        key = (str(src), str(dst))
        existing = relations[name].get(key)
        if existing is None:
            relations[name][key] = {"src": key[0], "dst": key[1], "props": props}
        else:
            existing["props"].update(props)
    out_rel: dict[str, list[dict[str, Any]]] = {}
    for name, by_key in relations.items():
        src_label, dst_label = _ENDPOINTS[name]
        for rel in by_key.values():
            rel["src_label"] = kinds.get(rel["src"], src_label)
            rel["dst_label"] = kinds.get(rel["dst"], dst_label)
        out_rel[name] = list(by_key.values())
    return list(nodes.values()), out_rel


# ----------------------------------------------------------------------------- loading


def _as_document(document: Any) -> ProvDocument:
    from prov.model import ProvDocument

    if isinstance(document, ProvDocument):
        return document
    path = Path(document)
    if not path.is_file():
        raise Neo4jLoadError(f"no PROV document at {path}")
    fmt = {".json": "json", ".provn": "provn", ".xml": "xml", ".ttl": "rdf", ".rdf": "rdf"}.get(path.suffix.lower())
    if fmt is None:
        raise Neo4jLoadError(f"cannot tell the PROV format of {path}: use .json, .provn, .xml or .ttl")
    try:
        if fmt == "rdf":
            return ProvDocument.deserialize(str(path), format="rdf", rdf_format="turtle")
        return ProvDocument.deserialize(str(path), format=fmt)
    except Exception as exc:
        raise Neo4jLoadError(f"cannot read PROV document {path}: {type(exc).__name__}: {exc}") from exc


def _driver(uri: str, user: str, password: str | None) -> Any:
    try:
        from neo4j.exceptions import AuthError, ConfigurationError, Neo4jError, ServiceUnavailable

        from neo4j import GraphDatabase
    except ImportError as exc:
        raise Neo4jLoadError("the neo4j Python driver is needed: pip install 'dlprov-otel[neo4j]'") from exc
    scheme = uri.split("://", 1)[0].lower() if "://" in uri else ""
    if scheme not in _SCHEMES:
        raise Neo4jLoadError(
            f"invalid Neo4j URI {uri!r}: use bolt://HOST:PORT or neo4j://HOST:PORT (schemes: {', '.join(_SCHEMES)})"
        )
    auth = (user, password) if password is not None else None
    try:
        driver = GraphDatabase.driver(uri, auth=auth, connection_timeout=10)
    except (ValueError, ConfigurationError) as exc:
        raise Neo4jLoadError(f"invalid Neo4j URI {uri!r}: {exc}") from exc
    try:
        driver.verify_connectivity()
    except AuthError as exc:
        driver.close()
        hint = "" if password is not None else " (no password given: pass --password or set NEO4J_PASSWORD)"
        raise Neo4jLoadError(f"Neo4j at {uri} rejected the credentials of user {user!r}{hint}: {exc.message}") from exc
    except (ServiceUnavailable, OSError) as exc:
        driver.close()
        raise Neo4jLoadError(
            f"cannot reach Neo4j at {uri}: {exc} (is the server running? `dlprov neo4j serve` starts one)"
        ) from exc
    except Neo4jError as exc:
        driver.close()
        raise Neo4jLoadError(f"Neo4j at {uri} refused the connection: {exc}") from exc
    return driver


def _batches(rows: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def _label_text(labels: Iterable[str]) -> str:
    out = ""
    for label in labels:
        if not _LABEL.match(label):
            raise Neo4jLoadError(f"refusing {label!r} as a Neo4j label")
        out += f":`{label}`"
    return out


def load(
    document: ProvDocument | str | os.PathLike[str],
    uri: str | None = None,
    user: str | None = None,
    password: str | None = None,
    database: str | None = None,
    *,
    batch_size: int = BATCH_SIZE,
) -> dict[str, Any]:
    """Load ``document`` (a ProvDocument or a PROV file) into Neo4j; never deletes anything.

    Defaults come from ``NEO4J_URI`` (else ``bolt://localhost:7687``), ``NEO4J_USERNAME``
    (else ``neo4j``), ``NEO4J_PASSWORD`` and ``NEO4J_DATABASE`` (else the server's default).
    Returns the document's ``nodes`` and ``relationships`` and what the load ``created``.
    """
    doc = _as_document(document)
    uri = uri or os.environ.get("NEO4J_URI") or DEFAULT_URI
    user = user or os.environ.get("NEO4J_USERNAME") or DEFAULT_USER
    password = password if password is not None else os.environ.get("NEO4J_PASSWORD")
    database = database or os.environ.get("NEO4J_DATABASE") or None
    nodes, relations = graph_of(doc)
    counters: dict[str, int] = defaultdict(int)
    driver = _driver(uri, user, password)
    from neo4j.exceptions import Neo4jError  # importable: _driver checked the driver is there

    try:
        for label in BASE_LABELS:
            driver.execute_query(
                f"CREATE CONSTRAINT dlprov_{label.lower()}_id IF NOT EXISTS FOR (n:`{label}`) REQUIRE n.id IS UNIQUE",
                database_=database,
            )
        by_labels: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        for node in nodes:
            by_labels[(node["base"], *node["labels"])].append({"id": node["id"], "props": node["props"]})
        for labels, rows in sorted(by_labels.items()):
            extra = f"SET n{_label_text(labels[1:])} " if len(labels) > 1 else ""
            query = f"UNWIND $rows AS row MERGE (n{_label_text(labels[:1])} {{id: row.id}}) {extra}SET n += row.props"
            for batch in _batches(rows, batch_size):
                _add(counters, driver.execute_query(query, rows=list(batch), database_=database).summary)
        for name, rels in sorted(relations.items()):
            by_ends: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
            for r in rels:
                by_ends[(r["src_label"] or "", r["dst_label"] or "")].append(r)
            for (src_label, dst_label), rows in sorted(by_ends.items()):
                # MERGE the ends too: a relation to an element the document does not declare
                # still lands, on a node that carries only its id.
                src = _label_text([src_label]) if src_label else ""
                dst = _label_text([dst_label]) if dst_label else ""
                query = (
                    f"UNWIND $rows AS row MERGE (a{src} {{id: row.src}}) MERGE (b{dst} {{id: row.dst}}) "
                    f"MERGE (a)-[r:`{name}`]->(b) SET r += row.props"
                )
                payload = [{"src": r["src"], "dst": r["dst"], "props": r["props"]} for r in rows]
                for batch in _batches(payload, batch_size):
                    _add(counters, driver.execute_query(query, rows=list(batch), database_=database).summary)
    except Neo4jError as exc:
        raise Neo4jLoadError(f"loading into Neo4j at {uri} failed: {exc}") from exc
    finally:
        driver.close()
    return {
        "uri": uri,
        "database": database,
        "nodes": len(nodes),
        "relationships": sum(len(r) for r in relations.values()),
        "nodes_created": counters["nodes_created"],
        "relationships_created": counters["relationships_created"],
        "properties_set": counters["properties_set"],
    }


def _add(counters: dict[str, int], summary: Any) -> None:
    c = summary.counters
    counters["nodes_created"] += c.nodes_created
    counters["relationships_created"] += c.relationships_created
    counters["properties_set"] += c.properties_set


# ----------------------------------------------------------------------------- command line


def _cmd_load(args: argparse.Namespace) -> int:
    if args.file:
        document: Any = args.file
        source = args.file
    else:
        from .prov import build_document
        from .store import require_existing

        store = require_existing(args.store)  # reading: never a new empty store
        document = build_document(store, execution=args.execution, dataflow=args.dataflow, progress=True)
        source = f"execution {args.execution!r}" if args.execution else f"dataflow {args.dataflow!r}"
    result = load(document, uri=args.uri, user=args.user, password=args.password, database=args.database)
    print(
        f"loaded {source} into {result['uri']}: {result['nodes']} nodes, "
        f"{result['relationships']} relationships "
        f"({result['nodes_created']} nodes and {result['relationships_created']} relationships new)"
    )
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from .services import neo4j_local

    try:
        running = neo4j_local.status()
        if running is not None:
            print(f"Neo4j already running (pid {running.pid})")
            server = running
        else:
            password = args.password or os.environ.get("NEO4J_PASSWORD") or neo4j_local.DEFAULT_PASSWORD
            server = neo4j_local.start(port=args.port, data_dir=args.data, password=password)
    except (RuntimeError, ValueError) as exc:
        raise Neo4jLoadError(f"cannot start Neo4j: {exc}") from exc
    for key, value in server.env().items():
        print(f"{key}={value}")
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    from .services import neo4j_local

    print("stopped" if neo4j_local.stop() else "not running")
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``dlprov neo4j load|serve|stop``."""
    p = subparsers.add_parser("neo4j", help="load PROV documents into Neo4j; run a local Neo4j")
    sub = p.add_subparsers(dest="neo4j_command", metavar="SUBCOMMAND", required=True)

    load_p = sub.add_parser("load", help="load an execution, a dataflow or a PROV file (adds, never wipes)")
    what = load_p.add_mutually_exclusive_group(required=True)
    what.add_argument("--execution", help="a run: its tag, latest, its name or a unique prefix")
    what.add_argument("--dataflow", help="dataflow tag (all its executions)")
    what.add_argument("--file", help="a PROV document (.json, .provn, .xml, .ttl)")
    load_p.add_argument("--store", help="store URL or path (default: $DLPROV_STORE or ./dlprov-data)")
    load_p.add_argument("--uri", help=f"Bolt URI (default: $NEO4J_URI or {DEFAULT_URI})")
    load_p.add_argument("--user", help="user (default: $NEO4J_USERNAME or neo4j)")
    load_p.add_argument("--password", help="password (default: $NEO4J_PASSWORD)")
    load_p.add_argument("--database", help="database (default: $NEO4J_DATABASE or the server's)")
    load_p.set_defaults(func=_cmd_load)

    serve_p = sub.add_parser("serve", help="start a local Neo4j 5 Community server in the background")
    serve_p.add_argument("--port", type=int, default=None, help="Bolt port (default: a free one)")
    serve_p.add_argument("--data", default=None, help="data directory (default: neo4j/run/data)")
    serve_p.add_argument("--password", help="password to set (default: $NEO4J_PASSWORD or dlprovdlprov)")
    serve_p.set_defaults(func=_cmd_serve)

    stop_p = sub.add_parser("stop", help="stop the server started by 'dlprov neo4j serve'")
    stop_p.set_defaults(func=_cmd_stop)


__all__ = ["Neo4jLoadError", "add_commands", "graph_of", "load"]
