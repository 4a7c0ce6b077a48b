"""What is read from Keras objects: learning rates, hyperparameters, metrics, file formats.

Every reader here is side-effect free; a fact a model cannot give (a subclassed model has
no JSON architecture) is ``None`` (:func:`optional`), which is not an error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from dlprov_otel import semconv

DECLARED_EPOCH = ("timestamp", "elapsed_time", "loss", "accuracy", "val_loss", "val_accuracy", "epoch")


def optional(fn: Callable[[], Any], default: Any = None) -> Any:
    """A fact the object may not have: ``default`` when reading it fails."""
    try:
        return fn()
    except Exception:
        return default


def to_float(value: Any) -> float:
    import keras

    return float(keras.ops.convert_to_numpy(value))


def learning_rates(model: Any) -> dict[str, float]:
    """Current learning rate of each optimizer ("" for a single one)."""
    opt = getattr(model, "optimizer", None)
    if opt is None:
        return {}
    subs = getattr(opt, "optimizers", None)  # keras' multi-optimizer wrappers
    pairs = [(str(o.name), o) for o in subs] if subs else [("", opt)]
    rates: dict[str, float] = {}
    for key, o in pairs:
        value = optional(lambda o=o: to_float(o.learning_rate))
        if value is not None:
            rates[key] = value
    return rates


def schedule_name(model: Any) -> str | None:
    """Class of the ``LearningRateSchedule`` driving the optimizer, if one does."""
    try:
        from keras.optimizers.schedules import LearningRateSchedule

        lr = getattr(model.optimizer, "_learning_rate", None)
        return type(lr).__name__ if isinstance(lr, LearningRateSchedule) else None
    except Exception:
        return None


def to_json(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str, sort_keys=True)


def hyperparameters(model: Any, learning_rate: float | None, epochs: Any, batch_size: Any) -> dict[str, Any]:
    """The ``itrainmodel`` element: the seed's attributes plus what Keras knows of the run."""
    import keras

    opt = getattr(model, "optimizer", None)
    opt_config = optional(opt.get_config) if opt is not None else None
    compile_config = optional(model.get_compile_config, {}) or {}
    row: dict[str, Any] = {
        # the class, lower-cased ("adam"): the config's name is per instance ("adam_3")
        "optimizer_name": type(opt).__name__.lower() if opt is not None else None,
        "learning_rate": learning_rate,
        "num_epochs": epochs,
        "num_layers": optional(lambda: len(model.layers)),
        "batch_size": batch_size,
        "optimizer_config": optional(lambda: to_json(opt_config)),
        "loss_function": optional(lambda: to_json(compile_config.get("loss"))),
        "metrics": optional(lambda: to_json(compile_config.get("metrics"))),
        "param_count": optional(model.count_params),
        "trainable_params": optional(lambda: sum(int(prod(w.shape)) for w in model.trainable_weights)),
        "model_architecture": optional(model.to_json),
        "model_name": optional(lambda: model.name),
        "keras_version": keras.__version__,
        "backend": optional(keras.backend.backend),
    }
    schedule = schedule_name(model)
    if schedule:
        row["learning_rate_schedule"] = optional(
            lambda: to_json(keras.optimizers.schedules.serialize(model.optimizer._learning_rate))
        )
    return row


def prod(shape: Any) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def pick_accuracy(logs: Mapping[str, Any], prefix: str) -> Any:
    """``accuracy`` as Keras named it: accuracy, acc, or the first ``*accuracy`` metric."""
    for name in (prefix + "accuracy", prefix + "acc"):
        if name in logs:
            return logs[name]
    for key, value in logs.items():
        if key.startswith(prefix) and key.endswith("accuracy") and (prefix or not key.startswith("val_")):
            return value
    return None


def metric_row(logs: Mapping[str, Any] | None, taken: Collection[str], mapped: Collection[str]) -> dict[str, Any]:
    """Every metric Keras logged but those in ``mapped`` (the caller stores them under their
    own names), sanitized and kept clear of the attribute names in ``taken``."""
    row: dict[str, Any] = {}
    for key, value in (logs or {}).items():
        if key in mapped:
            continue
        name = semconv.sanitize_name(key)
        if name in taken:
            name = "metric_" + name
        row[name] = value
    return row


def model_format(path: str) -> str:
    name = path.lower()
    for suffix in (".weights.h5", ".keras", ".h5", ".hdf5", ".weights.json", ".tflite"):
        if name.endswith(suffix):
            return suffix[1:]
    return Path(path).suffix.lstrip(".") or "directory"


def result_metrics(result: Any) -> dict[str, Any]:
    """The metrics ``evaluate`` returned (a dict, a list with the loss first, or the loss)."""
    if isinstance(result, Mapping):
        return dict(result)
    if isinstance(result, list | tuple):
        return {"loss": result[0]} if result else {}
    return {"loss": result}


__all__ = [
    "DECLARED_EPOCH",
    "hyperparameters",
    "learning_rates",
    "metric_row",
    "model_format",
    "optional",
    "pick_accuracy",
    "result_metrics",
    "schedule_name",
]
