"""One ``Trainer.train`` (:class:`TrainerRun`) and the tasks it records, in the vocabulary of
the other integrations: ``trainmodel`` (``itrainmodel``, ``otrainmodel`` per epoch,
``otrainedmodel``), ``adaptation`` and ``testmodel``."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from dlprov_otel.api import Dataflow, DataSet, Task

from .. import lineage
from .._shared.context import Settings, resolve
from .._shared.rows import clean_metrics, timestamp
from .._shared.silence import training_seen
from ..lineage.tasks import record_adaptation

DEFAULT_DATAFLOW = "transformers"
FRAMEWORK = "transformers"
_ARGS = (
    "weight_decay", "warmup_steps", "warmup_ratio", "lr_scheduler_type", "gradient_accumulation_steps",
    "max_steps", "seed", "optim", "adam_beta1", "adam_beta2", "adam_epsilon", "max_grad_norm",
    "per_device_eval_batch_size", "eval_strategy", "save_strategy", "logging_strategy", "fp16", "bf16",
)  # fmt: skip


class _State:
    settings: Settings | None = None


state = _State()


def context() -> tuple[Dataflow, str]:
    s = state.settings
    return resolve(s.dataflow if s else None, s.execution if s else None, default_dataflow=DEFAULT_DATAFLOW)


def _number(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, int | float | str):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def hyperparameters(args: Any, model: Any, optimizer: Any) -> dict[str, Any]:
    """The ``itrainmodel`` row: the seed's attributes, then TrainingArguments and the model."""
    config = getattr(model, "config", None)
    layers = None
    for name in ("num_hidden_layers", "n_layer", "num_layers"):
        layers = getattr(config, name, None) if config is not None else None
        if layers is not None:
            break
    row: dict[str, Any] = {
        # accelerate wraps the optimizer (AcceleratedOptimizer): the class of the one inside
        "optimizer_name": type(getattr(optimizer, "optimizer", optimizer)).__name__
        if optimizer is not None
        else str(getattr(getattr(args, "optim", None), "value", getattr(args, "optim", None))),
        "learning_rate": args.learning_rate,
        "num_epochs": args.num_train_epochs,
        "num_layers": layers,
        "batch_size": args.per_device_train_batch_size,
    }
    for name in _ARGS:
        value = getattr(args, name, None)
        if value is not None:
            row[name] = _number(getattr(value, "value", value))  # enums by their value
    if model is not None:
        row["model_name"] = type(model).__name__
        row["model_type"] = getattr(config, "model_type", None)
        try:
            row["param_count"] = sum(p.numel() for p in model.parameters())
            row["trainable_params"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
        except Exception:
            pass
    return {k: v for k, v in row.items() if v is not None or k in ("num_layers",)}


def describe_dataset(dataset: Any, name: str, subset: str) -> dict[str, Any] | None:
    """A dataset given to the Trainer: class, length, and a HuggingFace dataset's fingerprint."""
    if dataset is None:
        return None
    row: dict[str, Any] = {"data_name": name, "kind": "dataset", "subset": subset}
    row["dataset_class"] = type(dataset).__name__
    try:
        row["samples"] = len(dataset)
    except Exception:
        pass
    fingerprint = getattr(dataset, "_fingerprint", None)  # datasets.Dataset: its content's version
    if isinstance(fingerprint, str):
        row["fingerprint"] = fingerprint
    return row


def _rate(scheduler: Any, optimizer: Any) -> float | None:
    try:
        if scheduler is not None:
            return float(scheduler.get_last_lr()[0])
        return float(optimizer.param_groups[0]["lr"])
    except Exception:
        return None


class TrainerRun:
    """The ``trainmodel`` task of one ``Trainer.train`` and its per-epoch rows."""

    def __init__(self, trainer: Any) -> None:
        df, exec_tag = context()
        last = lineage.last_data_task(exec_tag)
        self.task: Task = lineage.new_task(df, exec_tag, "trainmodel", [last] if last else [])
        self.trainer = trainer
        self.losses: list[Any] = []  # what training_step returned this epoch (tensors)
        self.step0 = 0  # global step at the start of the epoch
        self.t0 = time.perf_counter()
        self.pending: dict[str, Any] | None = None
        self.deferred: list[tuple[float, float, int]] = []
        self.rate: float | None = None  # at the last check
        self.epoch_rate: float | None = None
        self.adaptations = 0
        self.begun = False
        self.ended = False
        training_seen(FRAMEWORK)
        training_seen("torch")  # a torch training, recorded here (the torch integration stands aside)

    # -- callback events --------------------------------------------------------------------
    def begin(self, args: Any, model: Any, optimizer: Any, scheduler: Any) -> None:
        if self.begun:
            return
        self.begun = True
        self.task.add_dataset(DataSet("itrainmodel", [hyperparameters(args, model, optimizer)]))
        self.task.begin()
        trainer = self.trainer
        if trainer is not None:
            rows = [
                describe_dataset(getattr(trainer, attr, None), attr, subset)
                for attr, subset in (("train_dataset", "train"), ("eval_dataset", "validation"))
            ]
            lineage.emit(self.task, "otrainset", [r for r in rows if r is not None], "trainset")
        self.rate = self.epoch_rate = _rate(scheduler, optimizer)

    def epoch_begin(self, global_step: int, optimizer: Any, scheduler: Any) -> None:
        self.flush()
        self.step0 = global_step
        self.t0 = time.perf_counter()
        self.epoch_rate = _rate(scheduler, optimizer)
        self.losses.clear()

    def epoch_end(self, epoch: float | None, global_step: int, optimizer: Any, scheduler: Any) -> None:
        self.flush()
        label = max(0, math.ceil(epoch or 0) - 1)
        steps = global_step - self.step0
        loss = None
        if self.losses:
            self.fold()
            loss = float(self.losses[0]) / max(1, steps)
        self.losses.clear()
        self.pending = {
            "timestamp": timestamp(),
            "elapsed_time": time.perf_counter() - self.t0,
            "loss": loss,
            "accuracy": None,
            "val_loss": None,
            "val_accuracy": None,
            "epoch": label,
            "steps": steps,
            "global_step": global_step,
            "learning_rate": self.epoch_rate,
        }
        now = _rate(scheduler, optimizer)
        if now is not None and self.rate is not None and now != self.rate:
            self.deferred.append((self.rate, now, label))  # one per epoch, after its row
        self.rate = now

    def fold(self) -> None:
        """The kept step losses as one tensor, their sum (on the device: no read)."""
        import torch

        total = torch.stack([v.detach().double().reshape(()) for v in self.losses]).sum()
        self.losses[:] = [total]

    def logged(self, logs: Mapping[str, Any]) -> None:
        """What the Trainer logged (its own epoch loss, grad norm) goes on the pending row."""
        if self.pending is None:
            return
        for key in ("grad_norm",):
            if key in logs:
                self.pending[key] = logs[key]
        if "loss" in logs:
            self.pending["logged_loss"] = logs["loss"]
            if self.pending["loss"] is None:  # no step losses (a hand-added callback alone)
                self.pending["loss"] = logs["loss"]

    def evaluated(self, metrics: Mapping[str, Any]) -> None:
        """An evaluation during training: the validation of the epoch that just ended."""
        if self.pending is None:
            return
        m = dict(metrics)
        self.pending["val_loss"] = m.pop("eval_loss", None)
        self.pending["val_accuracy"] = m.pop("eval_accuracy", None)
        for key, value in clean_metrics(m).items():
            if key != "epoch" and isinstance(value, int | float):
                self.pending["val_" + key.removeprefix("eval_")] = value

    def checkpoint(self, row: dict[str, Any], epoch: float | None) -> None:
        label = math.ceil(epoch or 0) - 1
        if label >= 0:
            row["epoch"] = label  # the epoch whose weights it holds
        self.task.add_dataset(DataSet("otrainedmodel", [row]))
        self.task.save()

    def flush(self) -> None:
        row, self.pending = self.pending, None
        if row is not None:
            self.task.add_dataset(DataSet("otrainmodel", [row]))
            self.task.save()
        deferred, self.deferred = self.deferred, []
        for old, new, epoch in deferred:
            self._adaptation(old, new, epoch)

    def _adaptation(self, old: float, new: float, epoch: int) -> None:
        self.adaptations += 1
        args = getattr(self.trainer, "args", None)
        kind = getattr(getattr(args, "lr_scheduler_type", None), "value", None)
        trigger = f"lr_scheduler:{kind}" if kind else "lr_scheduler"
        record_adaptation(self.task, self.adaptations, old, new, epoch, trigger)

    def finish(self, error: BaseException | None = None) -> None:
        if self.ended:
            return
        self.ended = True
        try:
            self.flush()
        finally:
            self.task.end(error=error)


def record_test(train: Task | None, metrics: Mapping[str, Any], prefix: str) -> None:
    """A ``testmodel`` task with the metrics of ``evaluate``/``predict`` (prefix removed)."""
    df, exec_tag = context()
    training_seen(FRAMEWORK)  # an evaluation is recorded: not silent
    training_seen("torch")
    m = {k.removeprefix(prefix + "_"): v for k, v in metrics.items()}
    row: dict[str, Any] = {"loss": m.pop("loss", None), "accuracy": m.pop("accuracy", None)}
    row.update({k: v for k, v in clean_metrics(m).items() if isinstance(v, int | float) and k not in row})
    deps = [train] if train is not None and train.exec_tag == exec_tag else []
    task = lineage.new_task(df, exec_tag, "testmodel", deps)
    task.begin()
    task.add_dataset(DataSet("otestmodel", [row]))
    task.end()


__all__ = ["DEFAULT_DATAFLOW", "FRAMEWORK", "TrainerRun", "context", "hyperparameters", "record_test", "state"]
