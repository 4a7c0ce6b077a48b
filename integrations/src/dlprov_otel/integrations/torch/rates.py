"""Learning-rate changes of a PyTorch training, recorded as ``adaptation`` tasks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from dlprov_otel.api import DataSet, Task

from .._shared.rows import timestamp
from .facts import Producer, learning_rates, reference
from .manual import RateSniffer
from .passes import Pass


class LearningRates:
    """The learning-rate part of :class:`~.recorder.Recorder` (a mixin: it uses the
    recorder's ``lock``, ``primary``, ``epoch``, ``train_task``, ``pending_epoch``,
    ``optimizer``, ``_stack``, ``_next_id`` and ``_task``)."""

    lock: threading.RLock
    primary: bool
    epoch: int
    train_task: Task | None
    pending_epoch: dict[str, Any] | None
    _stack: list[Pass]

    def __init__(self) -> None:
        # id(optimizer) -> (reference, rates); entries of optimizers that are gone are dropped
        self._rates: dict[int, tuple[Callable[[], Any], list[float | None]]] = {}
        self._adaptations: list[dict[str, Any]] = []
        self.manual_lr: float | None = None  # the rate of a manual SGD update (see .manual)
        self._sniffer: RateSniffer | None = None
        self.hp_row: dict[str, Any] | None = None  # itrainmodel, held until the manual rate is known

    @property
    def model(self) -> Any:
        raise NotImplementedError

    @property
    def optimizer(self) -> Any:
        raise NotImplementedError

    def _next_id(self, transformation: str, per_rank: bool = False) -> str:
        raise NotImplementedError

    def _task(self, transformation: str, task_id: str, deps: list[Producer]) -> Task:
        raise NotImplementedError

    def _note_rates(self, optimizer: Any, rates: list[float | None]) -> None:
        key = id(optimizer)
        if key not in self._rates:
            self._rates = {k: v for k, v in self._rates.items() if v[0]() is not None}
        self._rates[key] = (reference(optimizer), list(rates))

    def _noted_rates(self, optimizer: Any) -> list[float | None] | None:
        entry = self._rates.get(id(optimizer))
        return entry[1] if entry is not None and entry[0]() is optimizer else None

    def _current_lr(self) -> float | None:
        opt = self.optimizer
        if opt is None:
            return self.manual_lr
        lrs = learning_rates(opt)
        return lrs[0] if lrs else None

    def on_lr_change(
        self, optimizer: Any, old: list, new: list, trigger: str, step: Any = None, epoch: int | None = None
    ) -> None:
        """Record changed learning rates (grouped per training pass when made within one)."""
        with self.lock:
            self._note_rates(optimizer, list(new))
            if not self.primary:
                return
            training = any(q.steps for q in self._stack)
            if epoch is None:  # within a pass: this epoch; between passes: the one that ended
                epoch = self.epoch if training else max(self.epoch - 1, 0)
            for group, (a, b) in enumerate(zip(old, new, strict=False)):
                if a == b:
                    continue
                row = {
                    "new_learning_rate": b,
                    "old_learning_rate": a,
                    "epoch": epoch,
                    "trigger": trigger,
                    "timestamp": timestamp(),
                    "param_group": group,
                }
                if step is not None:
                    row["scheduler_step"] = step
                self._adaptations.append(row)
            if not training and self.pending_epoch is None:
                # else after the row of the epoch whose end triggered it (see flush_pending)
                self._flush_adaptations()

    def note_lrs(self, optimizer: Any) -> None:
        self._note_rates(optimizer, learning_rates(optimizer))

    def _check_manual_lr(self) -> None:
        opt = self.optimizer
        if opt is None:
            return
        now = learning_rates(opt)
        before = self._noted_rates(opt)
        if before is not None and before != now:
            # seen at the first step of a pass: made after the epoch that ended
            self.on_lr_change(opt, before, now, "param_groups", epoch=max(self.epoch - 1, 0))
            self._flush_adaptations()
        self._note_rates(opt, now)

    # -- trainings without an optimizer ------------------------------------------------------------
    def sniff_manual_rate(self) -> None:
        """At the first step of an epoch with no optimizer: read the update's learning rate."""
        self.disarm_sniffer()
        model = self.model
        if model is not None:
            self._sniffer = RateSniffer(list(model.parameters()), self._on_manual_rate)

    def disarm_sniffer(self) -> None:
        sniffer, self._sniffer = self._sniffer, None
        if sniffer is not None:
            sniffer.disarm()

    def _on_manual_rate(self, lr: float) -> None:
        with self.lock:
            old, self.manual_lr = self.manual_lr, lr
            if self.hp_row is not None:
                self.hp_row.update(optimizer_name="manual_sgd", learning_rate=lr)
                self.emit_hyperparameters()
            elif old is not None and old != lr and self.primary:
                # seen at the first update of an epoch: made after the epoch that ended
                row = {"new_learning_rate": lr, "old_learning_rate": old, "epoch": max(self.epoch - 1, 0),
                       "trigger": "manual", "timestamp": timestamp(), "param_group": 0}
                self._adaptations.append(row)
                if self.pending_epoch is None:
                    self._flush_adaptations()

    def emit_hyperparameters(self) -> None:
        """The ``itrainmodel`` row held for the manual rate (now, with it or without)."""
        row, self.hp_row = self.hp_row, None
        if row is not None and self.train_task is not None:
            self.train_task.add_dataset(DataSet("itrainmodel", [row]))
            self.train_task.save()

    def _flush_adaptations(self) -> None:
        rows, self._adaptations = self._adaptations, []
        if not rows:
            return
        tid = self._next_id("adaptation")
        deps = [(self.train_task.id, "trainmodel", self.train_task)] if self.train_task is not None else []
        task = self._task("adaptation", tid, deps)
        inputs, outputs = [], []
        for i, row in enumerate(rows):
            aid = tid if len(rows) == 1 else f"{tid}.{i}"
            inputs.append({"adaptation_id": aid, "trigger": row["trigger"], "epoch": row["epoch"]})
            outputs.append({"adaptation_id": aid, **row})
        task.add_dataset(DataSet("iadaptation", inputs))
        task.begin()
        task.add_dataset(DataSet("oadaptation", outputs))
        task.end()


__all__ = ["LearningRates"]
