"""Models saved and loaded: ``keras.models.load_model`` and ``Model.load_weights``.

Every recorded save (``otrainedmodel``) is remembered by its file's sha256 with the training
task that produced it. A load reads the file's size and sha256; the loaded model then counts
as trained by that task (an ``evaluate`` after the load depends on it), and the ``testmodel``
task of that evaluation is given the file as its ``otrainedmodel`` input (path, size, sha256,
the epoch whose weights it holds). In PROV that input is the very model entity its training
generated when the training is in the same execution (the lineage rule matches the sha256);
a model trained by another run is found by its sha256 (``dlprov lineage``).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from typing import Any

from dlprov_otel.api import Task

from .. import lineage
from .facts import model_format, optional
from .runs import context, last_train, weights_epoch

_lock = threading.Lock()
_saved: OrderedDict[str, tuple[Task, dict[str, Any]]] = OrderedDict()  # sha256 -> (task, row)
_MAX_SAVED = 1024
loaded: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()  # model -> file row


def remember_save(task: Task, row: dict[str, Any]) -> None:
    """A recorded save: the task that produced the file with this digest."""
    digest = row.get("sha256")
    if not digest:
        return
    with _lock:
        _saved[digest] = (task, dict(row))
        _saved.move_to_end(digest)
        while len(_saved) > _MAX_SAVED:
            _saved.popitem(last=False)


def producer(digest: str) -> tuple[Task, dict[str, Any]] | None:
    with _lock:
        return _saved.get(digest)


def describe_file(path: Any) -> dict[str, Any]:
    """Path, format, size and sha256 of a model file (no digest for what is not a path)."""
    if not isinstance(path, str | os.PathLike):
        return {"model_dir": repr(path)}
    full = os.path.abspath(os.fspath(path))
    row: dict[str, Any] = {"model_dir": full, "format": model_format(full)}
    if os.path.exists(full):
        row["size_bytes"], row["sha256"] = lineage.file_digest(full)
    return row


def record_load(model: Any, path: Any, how: str) -> None:
    """``model`` was loaded from ``path`` (``how``: model or weights)."""
    row = describe_file(path)
    row["loaded"] = how
    row["model_name"] = optional(lambda: model.name)
    found = producer(row["sha256"]) if row.get("sha256") else None
    _, exec_tag = context()
    if found is not None:
        task, saved = found
        if saved.get("epoch") is not None:
            row["epoch"] = saved["epoch"]
            weights_epoch[model] = saved["epoch"]
        if task.exec_tag == exec_tag:
            last_train[model] = task  # an evaluation of the loaded model depends on its training
    loaded[model] = row


def loaded_input(model: Any) -> dict[str, Any] | None:
    """The file a model was loaded from: the ``otrainedmodel`` input of its evaluation."""
    row = loaded.get(model)
    return dict(row) if row is not None else None


__all__ = ["describe_file", "loaded", "loaded_input", "producer", "record_load", "remember_save"]
