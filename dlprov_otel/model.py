"""Prospective provenance: dataflows, transformations, sets and typed attributes.

The vocabulary is DfAnalyzer's (``Dataflow``, ``Transformation``, ``Set``, ``Attribute``,
``AttributeType``, ``SetType``); tags are case-insensitive, as in the original.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from . import semconv
from .errors import SpecError


class AttributeType(str, Enum):
    """Type of a set attribute: TEXT and FILE are stored as strings, NUMERIC as DOUBLE."""

    TEXT = "TEXT"
    NUMERIC = "NUMERIC"
    FILE = "FILE"


class SetType(str, Enum):
    """Role of a set in a transformation."""

    INPUT = "INPUT"
    OUTPUT = "OUTPUT"


known_tags: dict[str, str] = {}  # tag -> normalized, for tags already checked (a hot path)


def normalize_tag(tag: Any, what: str = "tag") -> str:
    """Lower-case a tag and check that it can name a SQL schema, table or column."""
    known = known_tags.get(tag) if type(tag) is str else None
    if known is not None:
        return known
    if not isinstance(tag, str):
        raise SpecError(f"{what} must be a string, got {type(tag).__name__}: {tag!r}")
    norm = tag.strip().lower()
    if not semconv.TAG_PATTERN.match(norm):
        raise SpecError(
            f"invalid {what} {tag!r}: use letters, digits and underscores, starting with a "
            "letter or underscore, at most 63 characters (no quotes, spaces or dashes)"
        )
    if len(known_tags) < 100_000 and type(tag) is str:
        known_tags[tag] = norm
    return norm


# Schemas MonetDB keeps for itself: a dataflow's tables go into a schema named after its tag,
# so these tags would write into (or clash with) the database's own catalog.
MONETDB_SYSTEM_SCHEMAS = frozenset(
    {"sys", "tmp", "json", "profiler", "logging", "information_schema", "wlc", "wlr", "bam", "lidar",
     "netcdf", "shp"}
)


def dataflow_tag(tag: Any) -> str:
    """A dataflow tag: a valid tag that is not one of MonetDB's own schemas."""
    norm = normalize_tag(tag, "dataflow tag")
    if norm in MONETDB_SYSTEM_SCHEMAS:
        raise SpecError(
            f"dataflow tag {tag!r} is reserved: MonetDB uses a schema of that name for itself "
            f"(reserved: {', '.join(sorted(MONETDB_SYSTEM_SCHEMAS))}); choose another tag"
        )
    return norm


@dataclass
class Attribute:
    """A typed attribute of a set. ``optional`` attributes may be left out of an element."""

    name: str
    type: AttributeType = AttributeType.TEXT
    optional: bool = False

    def __post_init__(self) -> None:
        self.name = normalize_tag(self.name, "attribute name")
        if self.name in semconv.RESERVED_COLUMNS:
            raise SpecError(
                f"attribute name {self.name!r} is reserved for provenance columns "
                f"({', '.join(sorted(semconv.RESERVED_COLUMNS))})"
            )
        try:
            self.type = AttributeType(str(getattr(self.type, "value", self.type)).upper())
        except ValueError:
            raise SpecError(f"attribute {self.name!r}: unknown type {self.type!r} (TEXT, NUMERIC or FILE)") from None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type.value, "optional": self.optional}


class Set:
    """A dataset definition: a tag, a role and its attributes (DfAnalyzer's ``Set``)."""

    def __init__(
        self,
        tag: str,
        set_type: SetType | str = SetType.INPUT,
        attributes: Iterable[Attribute] = (),
        dependency: Any = None,
    ) -> None:
        self.tag = normalize_tag(tag, "set tag")
        self.type = SetType(str(getattr(set_type, "value", set_type)).upper())
        self.attributes: list[Attribute] = []
        for attribute in attributes:
            self.add_attribute(attribute)
        self.dependency = dependency

    def add_attribute(self, attribute: Attribute) -> None:
        if any(a.name == attribute.name for a in self.attributes):
            raise SpecError(f"set {self.tag!r} already has an attribute {attribute.name!r}")
        self.attributes.append(attribute)

    def set_type(self, set_type: SetType | str) -> None:  # dfa-lib-python spelling
        self.type = SetType(str(getattr(set_type, "value", set_type)).upper())

    @property
    def dependency_tag(self) -> str | None:
        dep = self.dependency
        if dep is None:
            return None
        return normalize_tag(getattr(dep, "tag", dep), "set dependency")

    def attribute(self, name: str) -> Attribute | None:
        name = name.lower()
        return next((a for a in self.attributes if a.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "attributes": [a.to_dict() for a in self.attributes]}

    def __repr__(self) -> str:
        return f"Set({self.tag!r}, {self.type.value}, {[a.name for a in self.attributes]})"


class Transformation:
    """A step of the dataflow, with its input and output sets."""

    def __init__(
        self,
        tag: str,
        inputs: Sequence[Set] = (),
        outputs: Sequence[Set] = (),
    ) -> None:
        self.tag = normalize_tag(tag, "transformation tag")
        self.inputs: list[Set] = []
        self.outputs: list[Set] = []
        for s in inputs:
            self.add_set(s, SetType.INPUT)
        for s in outputs:
            self.add_set(s, SetType.OUTPUT)

    def add_set(self, s: Set, role: SetType | str | None = None) -> None:
        """Add a set; its role is ``role`` or, if not given, the set's own type at this moment."""
        role = SetType(str(getattr(role, "value", role)).upper()) if role else s.type
        target = self.inputs if role is SetType.INPUT else self.outputs
        if any(x.tag == s.tag for x in self.inputs + self.outputs):
            raise SpecError(f"transformation {self.tag!r} already has a set {s.tag!r}")
        target.append(s)

    def set_sets(self, sets: Iterable[Set]) -> None:  # dfa-lib-python spelling
        for s in sets:
            self.add_set(s)

    def role_of(self, set_tag: str) -> SetType | None:
        set_tag = set_tag.lower()
        if any(s.tag == set_tag for s in self.inputs):
            return SetType.INPUT
        if any(s.tag == set_tag for s in self.outputs):
            return SetType.OUTPUT
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "input": [s.tag for s in self.inputs],
            "output": [s.tag for s in self.outputs],
        }

    def __repr__(self) -> str:
        return f"Transformation({self.tag!r}, in={[s.tag for s in self.inputs]}, out={[s.tag for s in self.outputs]})"


@dataclass
class DataflowSpec:
    """A dataflow specification as plain data: what travels in the dataflow span."""

    tag: str
    transformations: list[dict[str, Any]] = field(default_factory=list)
    sets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {"tag": self.tag, "transformations": self.transformations, "sets": list(self.sets.values())},
            sort_keys=True,
            separators=(",", ":"),
        )

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    @classmethod
    def from_json(cls, text: str) -> DataflowSpec:
        try:
            raw = json.loads(text)
            spec = cls(
                tag=dataflow_tag(raw["tag"]),
                transformations=list(raw.get("transformations", [])),
                sets={s["tag"]: s for s in raw.get("sets", [])},
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise SpecError(f"malformed dataflow specification: {exc}") from exc
        for t in spec.transformations:
            normalize_tag(t["tag"], "transformation tag")
            for tag in list(t.get("input", [])) + list(t.get("output", [])):
                if normalize_tag(tag, "set tag") not in spec.sets:
                    raise SpecError(f"dataflow spec: transformation {t['tag']!r} names unknown set {tag!r}")
        for s in spec.sets.values():
            for a in s.get("attributes", []):
                Attribute(a["name"], a.get("type", "TEXT"), bool(a.get("optional", False)))
        return spec

    def attributes_of(self, set_tag: str) -> dict[str, AttributeType]:
        """The attributes this version declares for a set (name -> type): the columns its rows may have."""
        s = self.sets.get(set_tag)
        if s is None:
            raise SpecError(f"dataflow {self.tag!r} declares no set {set_tag!r} (sets: {', '.join(sorted(self.sets))})")
        return {a["name"]: AttributeType(a.get("type", "TEXT")) for a in s.get("attributes", [])}

    def merged_with(self, other: DataflowSpec) -> DataflowSpec:
        """Union of two versions: new transformations, sets and attributes are added.

        An attribute already known keeps its first type (a stored column cannot change type).
        """
        merged = DataflowSpec.from_json(self.to_json())
        known = {t["tag"]: t for t in merged.transformations}
        for t in other.transformations:
            if t["tag"] not in known:
                merged.transformations.append(dict(t))
                known[t["tag"]] = merged.transformations[-1]
            else:
                mine = known[t["tag"]]
                for role in ("input", "output"):
                    for tag in t.get(role, []):
                        if tag not in mine[role]:
                            mine[role] = [*mine[role], tag]
        for tag, s in other.sets.items():
            if tag not in merged.sets:
                merged.sets[tag] = {"tag": tag, "attributes": list(s.get("attributes", []))}
                continue
            names = {a["name"] for a in merged.sets[tag]["attributes"]}
            for a in s.get("attributes", []):
                if a["name"] not in names:
                    merged.sets[tag]["attributes"].append(dict(a))
        return merged

    def transformation(self, tag: str) -> dict[str, Any] | None:
        return next((t for t in self.transformations if t["tag"] == tag), None)

    def producers_of(self, set_tag: str) -> list[str]:
        return [t["tag"] for t in self.transformations if set_tag in t.get("output", [])]

    def consumers_of(self, set_tag: str) -> list[str]:
        return [t["tag"] for t in self.transformations if set_tag in t.get("input", [])]


class Dataflow:
    """A dataflow: a tag and its transformations. ``predefined=True`` loads the DL vocabulary."""

    def __init__(self, tag: str, predefined: bool = False, hyperparameters: bool = False) -> None:
        self.tag = dataflow_tag(tag)
        self.transformations: dict[str, Transformation] = {}
        self.sets: dict[str, Set] = {}
        self.saved_hash: str | None = None
        if predefined or hyperparameters:
            for t in predefined_transformations():
                self.add_transformation(t)

    # -- building ---------------------------------------------------------------------------
    def add_transformation(self, transformation: Transformation) -> Transformation:
        """Add a transformation; after :meth:`save`, save again to record a new version."""
        if transformation.tag in self.transformations:
            raise SpecError(f"dataflow {self.tag!r} already has a transformation {transformation.tag!r}")
        for s in transformation.inputs + transformation.outputs:
            known = self.sets.get(s.tag)
            if known is not None and known is not s:
                if [a.to_dict() for a in known.attributes] != [a.to_dict() for a in s.attributes]:
                    raise SpecError(
                        f"set {s.tag!r} is already defined in dataflow {self.tag!r} with other "
                        "attributes; reuse the same Set object"
                    )
            else:
                self.sets[s.tag] = s
        self.transformations[transformation.tag] = transformation
        return transformation

    def transformation(self, tag: str) -> Transformation:
        norm = normalize_tag(tag, "transformation tag")
        try:
            return self.transformations[norm]
        except KeyError:
            raise SpecError(
                f"unknown transformation {tag!r} in dataflow {self.tag!r} "
                f"(known: {', '.join(sorted(self.transformations)) or 'none'})"
            ) from None

    def set(self, tag: str) -> Set:
        norm = normalize_tag(tag, "set tag")
        try:
            return self.sets[norm]
        except KeyError:
            raise SpecError(
                f"unknown set {tag!r} in dataflow {self.tag!r} (known: {', '.join(sorted(self.sets)) or 'none'})"
            ) from None

    # -- spec -------------------------------------------------------------------------------
    def to_spec(self) -> DataflowSpec:
        spec = DataflowSpec(tag=self.tag)
        for t in self.transformations.values():
            entry = t.to_dict()
            deps = sorted(
                {s.dependency_tag for s in t.inputs if s.dependency_tag}
                | {p for s in t.inputs for p in self._producers(s.tag) if p != t.tag}
            )
            entry["dependencies"] = deps
            spec.transformations.append(entry)
        for s in self.sets.values():
            spec.sets[s.tag] = s.to_dict()
        return spec

    def _producers(self, set_tag: str) -> list[str]:
        return [t.tag for t in self.transformations.values() if any(o.tag == set_tag for o in t.outputs)]

    @property
    def dirty(self) -> bool:
        """True when the dataflow changed since it was last saved."""
        return self.saved_hash != self.to_spec().hash

    def __repr__(self) -> str:
        return f"Dataflow({self.tag!r}, transformations={list(self.transformations)})"


def _attrs(*spec: tuple[str, AttributeType] | tuple[str, AttributeType, bool]) -> list[Attribute]:
    return [Attribute(*s) for s in spec]


N, T, F = AttributeType.NUMERIC, AttributeType.TEXT, AttributeType.FILE


def predefined_transformations() -> list[Transformation]:
    """The deep-learning life cycle of the original DLProv: load, split, train, adapt, test."""
    iinputdataset = Set("iinputdataset", SetType.INPUT, _attrs(("dataset_name", T), ("dataset_source", T)))
    oloaddata = Set("oloaddata", SetType.OUTPUT, _attrs(("dataset_dir", F)))
    isplitconfig = Set("isplitconfig", SetType.INPUT, _attrs(("ratio", N)))
    otrainset = Set("otrainset", SetType.OUTPUT, _attrs(("trainset", F)))
    otestset = Set("otestset", SetType.OUTPUT, _attrs(("testset", F)))
    itrainmodel = Set(
        "itrainmodel",
        SetType.INPUT,
        _attrs(
            ("optimizer_name", T),
            ("learning_rate", N),
            ("num_epochs", N),
            ("num_layers", N),
            ("batch_size", N, True),
        ),
    )
    otrainmodel = Set(
        "otrainmodel",
        SetType.OUTPUT,
        _attrs(
            ("timestamp", T),
            ("elapsed_time", N),
            ("loss", N),
            ("accuracy", N),
            ("val_loss", N),
            ("val_accuracy", N),
            ("epoch", N),
        ),
    )
    otrainedmodel = Set("otrainedmodel", SetType.OUTPUT, _attrs(("model_name", T), ("model_dir", F)))
    iadaptation = Set(
        "iadaptation", SetType.INPUT, _attrs(("adaptation_id", T), ("trigger", T, True), ("epoch", N, True))
    )
    oadaptation = Set(
        "oadaptation",
        SetType.OUTPUT,
        _attrs(
            ("adaptation_id", T),
            ("new_learning_rate", N),
            ("old_learning_rate", N, True),
            ("epoch", N, True),
            ("trigger", T, True),
            ("timestamp", T, True),
        ),
    )
    otestmodel = Set("otestmodel", SetType.OUTPUT, _attrs(("loss", N), ("accuracy", N)))
    return [
        Transformation("loaddata", [iinputdataset], [oloaddata]),
        Transformation("splitdata", [isplitconfig, oloaddata], [otrainset, otestset]),
        Transformation("trainmodel", [itrainmodel, otrainset], [otrainmodel, otrainedmodel]),
        Transformation("adaptation", [iadaptation, otrainmodel], [oadaptation]),
        Transformation("testmodel", [otestset, otrainedmodel], [otestmodel]),
    ]
