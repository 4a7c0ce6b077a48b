"""What is read from PyTorch objects: learning rates, DataLoader settings, datasets,
optimizers, models, and the number of epochs a script names."""

from __future__ import annotations

import json
import os
import sys
import weakref
from collections.abc import Callable
from typing import Any

from dlprov_otel import semconv
from dlprov_otel.values import to_number

_EPOCH_NAMES = (
    "num_epochs", "n_epochs", "epochs", "max_epochs", "nb_epochs", "total_epochs",
    "NUM_EPOCHS", "N_EPOCHS", "EPOCHS", "MAX_EPOCHS",
)  # fmt: skip
_CONFIG_NAMES = ("args", "opt", "config", "cfg", "hparams", "params")
_SOURCE_ATTRS = ("root", "data_dir", "root_dir", "path", "file", "filename", "csv_file", "img_dir")
Producer = tuple[str, str, Any]  # (task id, transformation, Task or None on other ranks)


def to_json(value: Any) -> str:
    def default(o: Any) -> Any:
        try:
            return to_number(o)
        except (TypeError, ValueError):
            return str(o)

    return json.dumps(value, default=default, sort_keys=True)


def learning_rates(optimizer: Any) -> list[float | None]:
    """The learning rate of each parameter group."""
    return [to_number(g.get("lr")) for g in optimizer.param_groups]


def reference(obj: Any) -> Callable[[], Any]:
    """A weak reference when the object allows one, else a strong one."""
    try:
        return weakref.ref(obj)
    except TypeError:
        return lambda: obj


class LoaderInfo:
    __slots__ = ("batch_size", "drop_last", "given", "num_workers", "producer", "sampler", "samples", "shuffle")

    def __init__(self, loader: Any) -> None:
        import torch.utils.data as tud

        sampler = getattr(loader, "sampler", None)
        self.batch_size = loader.batch_size
        self.shuffle = isinstance(sampler, tud.RandomSampler) or bool(getattr(sampler, "shuffle", False))
        self.num_workers = loader.num_workers
        self.drop_last = bool(loader.drop_last)
        self.sampler = type(sampler).__name__ if sampler is not None else None
        try:
            self.samples: int | None = len(loader.dataset)
        except Exception:
            self.samples = None
        self.producer: Producer | None = None
        self.given: dict[str, Any] | None = None  # a dataset loaded whole (no split): its reference

    def facts(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "shuffle": int(self.shuffle),
            "num_workers": self.num_workers,
            "drop_last": int(self.drop_last),
            "sampler": self.sampler,
            "train_samples": self.samples,
        }


def length(obj: Any) -> int | None:
    try:
        return len(obj)
    except Exception:
        return None


def unwrap_model(model: Any) -> Any:
    inner = getattr(model, "module", None)
    if inner is not None and type(model).__name__ in ("DistributedDataParallel", "DataParallel"):
        return inner
    return model


def dataset_source(dataset: Any) -> str | None:
    for attr in _SOURCE_ATTRS:
        value = getattr(dataset, attr, None)
        if isinstance(value, str | os.PathLike) and str(value):
            return os.path.abspath(os.fspath(value))
    return None


def dataset_ref(dataset: Any) -> str:
    return dataset_source(dataset) or f"memory:{type(dataset).__name__}"


def describe_dataset(dataset: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    cls = type(dataset)
    qual = f"{cls.__module__}.{cls.__qualname__}"
    source = dataset_source(dataset)
    inp = {"dataset_name": cls.__name__, "dataset_source": source or qual, "dataset_class": qual}
    out: dict[str, Any] = {"dataset_dir": dataset_ref(dataset), "num_samples": length(dataset)}
    tensors = getattr(dataset, "tensors", None)
    if isinstance(tensors, tuple):  # TensorDataset
        out["shapes"] = to_json([list(t.shape) for t in tensors])
        out["dtypes"] = to_json([str(t.dtype) for t in tensors])
    train = getattr(dataset, "train", None)
    if isinstance(train, bool):  # torchvision datasets: the train or the test part
        out["dataset_split"] = "train" if train else "test"
    return inp, out


def optimizer_facts(opt: Any) -> dict[str, Any]:
    lrs = learning_rates(opt)
    facts: dict[str, Any] = {
        "learning_rate": lrs[0] if lrs else None,
        "param_groups": len(lrs),
        "optimizer_defaults": to_json(dict(opt.defaults)),
    }
    if len(lrs) > 1:
        facts["learning_rates"] = to_json(lrs)
    for key, value in opt.defaults.items():
        if isinstance(value, bool) or value is None:
            continue
        try:
            facts[semconv.sanitize_name(f"opt_{key}")] = to_number(value)
        except (TypeError, ValueError):
            continue
    return facts


def model_facts(model: Any) -> dict[str, Any]:
    m = unwrap_model(model)
    leaves = sum(1 for mod in m.modules() if next(mod.children(), None) is None)
    params = list(m.parameters())
    first = params[0] if params else None
    return {
        "num_layers": leaves,
        "model_class": type(m).__name__,
        "num_parameters": sum(p.numel() for p in params),
        "trainable_parameters": sum(p.numel() for p in params if p.requires_grad),
        "device": str(first.device) if first is not None else None,
        "dtype": str(first.dtype) if first is not None else None,
    }


def guess_epochs() -> int | None:
    """The number of epochs when the training loop's frames name it (``epochs = 10``)."""
    frame = sys._getframe(1)
    user = 0
    while frame is not None and user < 4:
        module = frame.f_globals.get("__name__", "")
        if not module.startswith(("torch", "wrapt", "dlprov_otel", "lightning", "opentelemetry")):
            user += 1
            for scope in (frame.f_locals, frame.f_globals):
                for name in _EPOCH_NAMES:
                    value = scope.get(name)
                    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**8:
                        return value
                for name in _CONFIG_NAMES:
                    holder = scope.get(name)
                    for attr in ("epochs", "num_epochs", "n_epochs", "max_epochs"):
                        value = getattr(holder, attr, None) if holder is not None else None
                        if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**8:
                            return value
        frame = frame.f_back
    return None


__all__ = [
    "LoaderInfo",
    "Producer",
    "dataset_ref",
    "describe_dataset",
    "guess_epochs",
    "learning_rates",
    "length",
    "model_facts",
    "optimizer_facts",
    "reference",
    "to_json",
    "unwrap_model",
]
