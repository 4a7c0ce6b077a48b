"""Data lineage of a PyTorch training: each dataset a DataLoader or ``random_split`` sees
becomes a ``loaddata`` task, each split a ``splitdata`` task (recorded by rank 0)."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

from dlprov_otel.api import DataSet, Task

from .._shared.guard import report
from .facts import LoaderInfo, Producer, dataset_ref, describe_dataset, length, reference, to_json


class DataLineage:
    """The lineage part of :class:`~.recorder.Recorder` (a mixin: it uses the recorder's
    ``lock``, ``primary``, ``_next_id`` and ``_task``)."""

    lock: threading.RLock
    primary: bool

    def __init__(self) -> None:
        self._producers: dict[int, tuple[Producer, Callable[[], Any]]] = {}
        self._prune_at = 64
        self._loaders: weakref.WeakKeyDictionary[Any, LoaderInfo] = weakref.WeakKeyDictionary()

    def _next_id(self, transformation: str, per_rank: bool = False) -> str:
        raise NotImplementedError

    def _task(self, transformation: str, task_id: str, deps: list[Producer]) -> Task:
        raise NotImplementedError

    def producer_of(self, dataset: Any, shuffle: bool = False) -> Producer | None:
        """The task that produced ``dataset`` (loaddata or splitdata), recorded on first sight."""
        import torch.utils.data as tud

        hit = self._producers.get(id(dataset))
        if hit is not None and hit[1]() is dataset:
            return hit[0]
        if isinstance(dataset, tud.Subset):  # made by hand: a one-part split
            parent = self.producer_of(dataset.dataset)
            role = "otrainset" if shuffle else "otestset"
            return self._record_split(dataset.dataset, parent, [dataset], "subset", None, roles=[role])
        return self._record_load(dataset)

    def _remember(self, dataset: Any, producer: Producer) -> None:
        if len(self._producers) >= self._prune_at:  # forget datasets that are gone
            self._producers = {k: v for k, v in self._producers.items() if v[1]() is not None}
            self._prune_at = max(64, 2 * len(self._producers))
        self._producers[id(dataset)] = (producer, reference(dataset))

    def _record_load(self, dataset: Any) -> Producer:
        tid = self._next_id("loaddata")
        task = None
        if self.primary:
            desc_in, desc_out = describe_dataset(dataset)
            task = self._task("loaddata", tid, [])
            task.add_dataset(DataSet("iinputdataset", [desc_in]))
            task.begin()
            task.add_dataset(DataSet("oloaddata", [desc_out]))
            task.end()
        producer = (tid, "loaddata", task)
        self._remember(dataset, producer)
        return producer

    def _record_split(
        self,
        dataset: Any,
        parent: Producer | None,
        parts: list[Any],
        method: str,
        generator: Any,
        roles: list[str] | None = None,
    ) -> Producer:
        tid = self._next_id("splitdata")
        task = None
        if self.primary:
            total = length(dataset)
            lengths = [length(p) for p in parts]
            config: dict[str, Any] = {
                "ratio": (lengths[0] / total) if total and lengths[0] is not None else None,
                "lengths": to_json(lengths),
                "num_parts": len(parts),
                "method": method,
            }
            if generator is not None:
                config["seed"] = str(generator.initial_seed())  # TEXT: a 64-bit seed is exact
            task = self._task("splitdata", tid, [parent] if parent else [])
            task.add_dataset(DataSet("isplitconfig", [config]))
            task.begin()
            source = dataset_ref(dataset)
            roles = roles or ["otrainset"] + ["otestset"] * (len(parts) - 1)
            for i, role in enumerate(roles):
                attr = "trainset" if role == "otrainset" else "testset"
                row = {attr: f"{source}#part{i}", "num_samples": lengths[i], "part": i}
                task.add_dataset(DataSet(role, [row]))
            task.end()
        producer = (tid, "splitdata", task)
        for part in parts:
            self._remember(part, producer)
        return producer

    def on_random_split(self, dataset: Any, parts: list[Any], generator: Any) -> None:
        with self.lock:
            parent = self.producer_of(dataset)
            self._record_split(dataset, parent, list(parts), "random_split", generator)

    def loader_info(self, loader: Any) -> LoaderInfo:
        """Settings and lineage of a DataLoader (lineage recorded on first sight)."""
        info = self._loaders.get(loader)
        if info is None:
            info = self._loaders[loader] = LoaderInfo(loader)
            try:
                info.producer = self.producer_of(loader.dataset, info.shuffle)
                if info.producer is not None and info.producer[1] == "loaddata":
                    # no split made it: the training or test using it is given it as its set
                    info.given = {"ref": dataset_ref(loader.dataset), "num_samples": info.samples}
            except Exception as exc:  # the epochs are still worth recording without lineage
                report("torch DataLoader", exc)
        return info


__all__ = ["DataLineage"]
