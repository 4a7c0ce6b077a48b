"""The records of a PROV document that stand for store objects: the plan (dataflow), agents
(scientist, hardware) and elements. Each is made once and reused; identifiers are derived
from what the store keys on, so the same store gives the same document."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prov.constants import PROV
from prov.identifier import QualifiedName
from prov.model import ProvDocument, ProvEntity

from ..store import readmodel
from ..store.artifacts import RecipeEntry
from ..store.readmodel import Element, Hardware
from ..store.schema import ELEMENT_ID, TRACE_ID
from .namespaces import ID_PREFIX, ID_URI, MODEL_SETS, VOCAB_PREFIX, VOCAB_URI
from .values import clean_text, local_name, typed


class DocumentBuilder:
    """A :class:`ProvDocument` being filled from one store."""

    def __init__(self, store: Any, tick: Callable[[int], Any]) -> None:
        self.store = store
        self.tick = tick
        self.doc = ProvDocument()
        self.ns = self.doc.add_namespace(VOCAB_PREFIX, VOCAB_URI)
        self.ids = self.doc.add_namespace(ID_PREFIX, ID_URI)
        self.entities: dict[str, ProvEntity] = {}  # element key -> entity
        self.agents: dict[str, QualifiedName] = {}
        self.plans: dict[str, QualifiedName] = {}
        self.labels: dict[int, str] = {}  # id(element) -> label

    # -- naming ----------------------------------------------------------------------------
    def vocab(self, name: str) -> QualifiedName:
        return self.ns[name]

    def ident(self, kind: str, *parts: str) -> QualifiedName:
        return self.ids[kind + "/" + "-".join(local_name(str(p)) for p in parts)]

    def attrs(self, pairs: Iterable[tuple[str, Any]]) -> list[tuple[Any, Any]]:
        out: list[tuple[Any, Any]] = []
        for key, value in pairs:
            if value is None:
                continue
            name = key if isinstance(key, QualifiedName) else self.vocab(key)
            out.append((name, clean_text(value) if isinstance(value, str) else value))
        return out

    # -- plan and agents --------------------------------------------------------------------
    def plan(self, dataflow: str) -> QualifiedName:
        if dataflow in self.plans:
            return self.plans[dataflow]
        row = readmodel.dataflow(self.store, dataflow)
        ident = self.ident("dataflow", dataflow)
        self.doc.entity(
            ident,
            [
                (PROV["type"], PROV["Plan"]),
                (PROV["label"], clean_text(f"dataflow {dataflow}")),
                *self.attrs(
                    [
                        ("tag", dataflow),
                        ("version", int(row.version) if row else None),
                        ("spec_hash", row.spec_hash if row else None),
                    ]
                ),
            ],
        )
        self.plans[dataflow] = ident
        return ident

    def scientist(self, name: str | None) -> QualifiedName | None:
        if not name:
            return None
        key = "scientist:" + name
        if key not in self.agents:
            ident = self.ident("scientist", name)
            self.doc.agent(
                ident,
                [(PROV["type"], PROV["Person"]), (PROV["label"], clean_text(name)), *self.attrs([("name", name)])],
            )
            self.agents[key] = ident
        return self.agents[key]

    def hardware(self, hw_id: str | None, rows: dict[str, Hardware]) -> QualifiedName | None:
        if not hw_id:
            return None
        key = "hardware:" + hw_id
        if key not in self.agents:
            hw = rows.get(hw_id) or Hardware(hw_id)
            gpu_list = hw.gpu_list()
            cpu = hw.cpu_model
            count = hw.cpu_count
            label = " · ".join(
                p
                for p in (
                    str(hw.host_name or "hardware"),
                    f"{count}× {cpu}" if cpu and count else cpu,
                    ", ".join(map(str, gpu_list)) if gpu_list else None,
                )
                if p
            )
            ident = self.ident("hardware", hw_id)
            self.doc.agent(
                ident,
                [
                    (PROV["type"], self.vocab("Hardware")),
                    (PROV["label"], clean_text(label)),
                    *self.attrs(
                        [
                            ("hardware_id", hw_id),
                            ("host_name", hw.host_name),
                            ("arch", hw.arch),
                            ("os", hw.os),
                            ("cpu_model", cpu),
                            ("cpu_count", int(count) if count is not None else None),
                            ("memory_bytes", int(hw.memory_bytes) if hw.memory_bytes else None),
                            ("gpus", ", ".join(map(str, gpu_list)) if gpu_list else None),
                            ("container", hw.container or None),
                        ]
                    ),
                ],
            )
            self.agents[key] = ident
        return self.agents[key]

    # -- the recipe of a run: a plan and the software that ran it ------------------------------
    def recipe(
        self, run_key: str, entries: Sequence[RecipeEntry]
    ) -> tuple[QualifiedName, QualifiedName | None] | None:
        """The recipe of one run as a ``prov:Plan`` (``dlprov:Recipe``) with its attributes and
        digests, and the entry script as a ``prov:SoftwareAgent``; ``None`` without a recipe."""
        if not entries:
            return None
        ranks = [e.rank for e in entries if e.rank is not None]
        lead = min(ranks) if ranks else None
        values = {e.name: e for e in entries if e.rank == lead or lead is None}
        pairs: list[tuple[str, Any]] = []
        multi: list[tuple[str, Any]] = []
        for name, e in values.items():
            if name.startswith(("package.", "seed.", "env.")):
                group, _, key = name.partition(".")
                multi.append((group, f"{key}={e.value}" if group != "package" else f"{key}=={e.value}"))
            elif name == "git.diff":
                pairs.append(("git_diff_sha256", e.digest))
            elif name != "script.sha256":
                pairs.append((name.replace(".", "_"), e.value))
        script = values.get("script.path")
        if script is not None:
            pairs.append(("script_sha256", script.digest))
        ident = self.ident("recipe", run_key)
        self.doc.entity(
            ident,
            [
                (PROV["type"], PROV["Plan"]),
                (PROV["type"], self.vocab("Recipe")),
                (PROV["label"], clean_text("recipe · " + _short(values))),
                *self.attrs(pairs),
                *self.attrs(multi),
            ],
        )
        agent = None
        if script is not None and script.value:
            key = "software:" + (script.digest or script.value)
            agent = self.agents.get(key)
            if agent is None:
                agent = self.ident("software", script.digest or script.value)
                commit = values.get("git.commit")
                self.doc.agent(
                    agent,
                    [
                        (PROV["type"], PROV["SoftwareAgent"]),
                        (PROV["label"], clean_text(script.value.rsplit("/", 1)[-1])),
                        *self.attrs(
                            [
                                ("script_path", script.value),
                                ("script_sha256", script.digest),
                                ("git_commit", commit.value if commit else None),
                            ]
                        ),
                    ],
                )
                self.agents[key] = agent
        return ident, agent

    # -- elements ---------------------------------------------------------------------------
    def element(self, el: Element) -> ProvEntity:
        key = f"{el.get(TRACE_ID)}-{el.get(ELEMENT_ID)}"
        entity = self.entities.get(key)
        if entity is not None:
            return entity
        ident = self.ident("element", str(el.get(TRACE_ID) or "x"), str(el.get(ELEMENT_ID)))
        pairs: list[tuple[Any, Any]] = []
        if el.set_tag in MODEL_SETS:
            pairs.append((PROV["type"], self.vocab("TrainedModel")))
        pairs.append((PROV["label"], clean_text(self.labels.get(id(el)) or el.set_tag)))
        pairs.append((self.vocab("ds_tag"), el.set_tag))
        pairs.extend(self.attrs(typed_attributes(el)))
        entity = self.doc.entity(ident, pairs)
        self.entities[key] = entity
        self.tick(1)
        return entity


def _short(values: dict[str, RecipeEntry]) -> str:
    script = values.get("script.path")
    commit = values.get("git.commit")
    dirty = values.get("git.dirty")
    suffix = "+dirty" if dirty is not None and dirty.value == "true" else ""
    parts = [
        script.value.rsplit("/", 1)[-1] if script is not None and script.value else None,
        commit.value[:10] + suffix if commit is not None and commit.value else None,
    ]
    return " @ ".join(p for p in parts if p) or "run"


def typed_attributes(el: Element) -> list[tuple[str, Any]]:
    """An element's attribute values as PROV values (NULL and NaN as ``None``)."""
    return [(c, typed(v)) for c, v in el.attributes()]


__all__ = ["DocumentBuilder", "typed_attributes"]
