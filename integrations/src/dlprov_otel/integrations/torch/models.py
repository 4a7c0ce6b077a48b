"""Models saved and loaded: ``torch.save`` to a path or to an open file, ``torch.load``.

A save to a path is hashed at once. A save to an open file (``with open(f, "wb") as fh:
torch.save(model, fh)``) is hashed once the file is complete: when its object is seen closed
(the recorder's idle watcher looks every 0.1 s, and every recording point looks too) or, at
the end, after a flush. A file object without a name (``io.BytesIO``) is no model file and is
not recorded. A load records the file's path, size and sha256 and becomes the model the next
evaluation uses: an ``otrainedmodel`` input of that ``testmodel`` task, which links it to the
run that saved the same digest.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dlprov_otel.api import DataSet, Task

from .._shared.guard import report
from ..lineage.describe import file_digest
from .facts import unwrap_model
from .passes import Pass

_WEIGHTS_NOW: Any = object()  # on_save's default: the epoch whose weights the model holds now


def file_path(f: Any) -> str | None:
    """The path of a file argument: a path, or an open file object that has a name."""
    if isinstance(f, str | os.PathLike):
        return os.path.abspath(os.fspath(f))
    name = getattr(f, "name", None)
    if isinstance(name, str | os.PathLike) and not isinstance(name, bool):
        path = os.fspath(name)
        if isinstance(path, str) and path:
            return os.path.abspath(path)
    return None


def _content(obj: Any) -> str:
    import torch

    if isinstance(obj, torch.nn.Module):
        return "module"
    if isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return "state_dict"
    return "checkpoint"


class SavedModels:
    """The saved-model part of :class:`~.recorder.Recorder` (a mixin: it uses the recorder's
    ``lock``, ``epoch``, ``train_task``, ``model``, ``_stack``, ``_orphan`` and
    ``begin_training``)."""

    lock: threading.RLock
    epoch: int
    train_task: Task | None
    _stack: list[Pass]
    _orphan: Pass

    def __init__(self) -> None:
        self._open_saves: list[tuple[Any, dict[str, Any]]] = []  # (file object, row without digest)
        self.loaded: dict[str, Any] | None = None  # the model file the next evaluation uses
        self._saved_epochs: dict[str, int | None] = {}  # sha256 -> epoch, of this process's saves

    @property
    def model(self) -> Any:
        raise NotImplementedError

    def begin_training(self, *args: Any, **kwargs: Any) -> Task:
        raise NotImplementedError

    def weights_epoch(self) -> int | None:
        """The epoch whose weights a model saved now holds: the one in progress during a
        training pass, else the last one completed (``None`` before the first)."""
        if self._orphan.steps or any(q.steps for q in self._stack):
            return self.epoch
        return self.epoch - 1 if self.epoch > 0 else None

    def on_save(self, obj: Any, f: Any, content: str | None = None, epoch: Any = _WEIGHTS_NOW) -> None:
        """Record a saved model file as ``otrainedmodel`` of the current training (``epoch``: the
        epoch whose weights it holds, when the caller knows it; else :meth:`weights_epoch`)."""
        path = file_path(f)
        if path is None:
            return  # a buffer in memory (a deep copy, a transfer), not a model file
        with self.lock:
            is_module = _is_module(obj)
            model = obj if is_module else self.model
            name = type(unwrap_model(model)).__name__ if model is not None else Path(path).stem
            row: dict[str, Any] = {
                "model_name": name,
                "model_dir": path,
                "size_bytes": None,
                "sha256": None,
                "content": content or _content(obj),
                "epoch": self.weights_epoch() if epoch is _WEIGHTS_NOW else epoch,
            }
            if isinstance(f, str | os.PathLike) or getattr(f, "closed", True):
                self._emit_saved(row)
            else:  # still being written: hashed when the script closes it
                self._open_saves.append((f, row))

    def _emit_saved(self, row: dict[str, Any]) -> None:
        row["size_bytes"], row["sha256"] = file_digest(row["model_dir"])
        self._saved_epochs[row["sha256"]] = row["epoch"]
        if self.train_task is None:
            self.begin_training()
        self.train_task.add_dataset(DataSet("otrainedmodel", [row]))
        self.train_task.save()

    def check_saves(self, final: bool = False) -> None:
        """Record the saves to open files that are closed now (``final``: all of them)."""
        if not self._open_saves:
            return
        with self.lock:
            waiting = []
            for f, row in self._open_saves:
                if not getattr(f, "closed", True) and not final:
                    waiting.append((f, row))
                    continue
                try:
                    if not getattr(f, "closed", True):
                        f.flush()
                    self._emit_saved(row)
                except Exception as exc:
                    report("torch.save to a file", exc)
            self._open_saves = waiting

    def on_load(self, f: Any, obj: Any) -> None:
        """A model file read back: the model of the evaluations that follow."""
        path = file_path(f)
        if path is None or not os.path.isfile(path):
            return
        with self.lock:
            self.check_saves()  # a file saved then loaded in one `with` block is complete
            size, digest = file_digest(path)
            model = obj if _is_module(obj) else None
            self.loaded = {
                "model_name": type(unwrap_model(model)).__name__ if model is not None else Path(path).stem,
                "model_dir": path,
                "size_bytes": size,
                "sha256": digest,
                "content": _content(obj) if obj is not None else None,
                "epoch": self._saved_epochs.get(digest),
            }


def _is_module(obj: Any) -> bool:
    import torch

    return isinstance(obj, torch.nn.Module)


__all__ = ["SavedModels", "file_path"]
