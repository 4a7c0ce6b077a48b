"""PyTorch Lightning: ``DLProvLightningCallback`` records a ``Trainer``'s provenance.

::

    trainer = L.Trainer(max_epochs=5, callbacks=[DLProvLightningCallback()])

- fit start (``on_train_start``): a ``trainmodel`` task with ``itrainmodel`` (optimizer,
  learning rate, ``max_epochs``, layers, batch size, ...) and the data lineage of the
  training DataLoader;
- each training epoch: one ``otrainmodel`` row from ``trainer.callback_metrics``
  (``train_loss``/``loss``, ``train_acc``, ``val_loss``, ``val_acc``, and every other
  logged metric as an extra column); the loss defaults to the mean of the losses the
  training steps returned;
- each learning-rate change (scheduler or by hand): an ``adaptation`` task;
- fit end: the best checkpoint (``ModelCheckpoint``) as ``otrainedmodel`` (path, size,
  sha256), then the task ends (FAILED when the fit raised);
- test end: a ``testmodel`` task with ``otestmodel`` from the ``test_*`` metrics.

While instrumented (``opentelemetry-instrument``), every ``Trainer`` gets one automatically
and the plain-loop capture of :mod:`dlprov_otel.integrations.torch` stands aside during
fit and test, so nothing is recorded twice. The callback records through the torch
integration's public recorder (:class:`~dlprov_otel.integrations.torch.Recorder`).
"""

from __future__ import annotations

import os
import time
from typing import Any

import lightning.pytorch as pl

from dlprov_otel import semconv

from ._shared.guard import guarded
from ._shared.rows import timestamp
from .torch.facts import learning_rates
from .torch.passes import Pass
from .torch.recorder import Recorder
from .torch.state import get_recorder

_LOSS = ("train_loss_epoch", "train_loss", "loss_epoch", "loss")
_ACC = ("train_acc_epoch", "train_acc", "train_accuracy", "acc", "accuracy")
_VAL_LOSS = ("val_loss", "val_loss_epoch", "valid_loss")
_VAL_ACC = ("val_acc", "val_accuracy", "val_acc_epoch", "valid_acc")
_TEST_LOSS = ("test_loss", "test_loss_epoch")
_TEST_ACC = ("test_acc", "test_accuracy", "test_acc_epoch")


def _metrics(trainer: pl.Trainer) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key, value in trainer.callback_metrics.items():
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            continue
    return out


def _pick(metrics: dict[str, Any], names: tuple[str, ...]) -> Any:
    return next((metrics[n] for n in names if n in metrics), None)


class DLProvLightningCallback(pl.Callback):
    """Record the training, its epochs, adaptations, model file and test as provenance."""

    def __init__(
        self, dataflow: str | None = None, execution: str | None = None, *, execution_tag: str | None = None
    ) -> None:
        super().__init__()
        self.dataflow = dataflow
        self.execution = execution or execution_tag  # execution_tag: the earlier keyword
        self._rec: Recorder | None = None
        self._suspended = 0
        self._t0 = time.perf_counter()
        self._losses: Pass | None = None
        self._lrs: list[float | None] = []
        self._epoch_lr: float | None = None  # the rate the epoch ran with
        self._optimizer: Any = None
        self._epoch_started: int | None = None  # the latest training epoch begun
        self._saved_epochs: dict[str, int | None] = {}  # checkpoint path -> epoch of its weights

    # -- plumbing -----------------------------------------------------------------------------
    @property
    def rec(self) -> Recorder:
        if self._rec is None:
            rec = get_recorder()
            if self.dataflow or self.execution:
                rec = Recorder(self.dataflow, self.execution)
            self._rec = rec
        return self._rec

    def _suspend(self) -> None:
        self.rec.suspended += 1
        self._suspended += 1

    def _resume(self) -> None:
        if self._suspended:
            self._suspended -= 1
            self.rec.suspended -= 1

    @staticmethod
    def _trigger(trainer: pl.Trainer) -> str:
        configs = getattr(trainer, "lr_scheduler_configs", None) or []
        return type(configs[0].scheduler).__name__ if configs else "param_groups"

    def _check_lr(self, trainer: pl.Trainer, within_epoch: bool) -> None:
        opt = self._optimizer
        if opt is None:
            return
        now = learning_rates(opt)
        if now != self._lrs:
            # seen between epochs, the change belongs to the epoch that just ended
            epoch = trainer.current_epoch if within_epoch else max(trainer.current_epoch - 1, 0)
            self.rec.on_lr_change(opt, self._lrs, now, self._trigger(trainer), trainer.global_step, epoch=epoch)
            self._lrs = now

    # -- fit --------------------------------------------------------------------------------------
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._suspend()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        guarded("lightning train start", self._train_start, trainer, pl_module)

    def _train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_started, self._saved_epochs = None, {}
        self._watch_saves(trainer)
        rec = self.rec
        opt = trainer.optimizers[0] if trainer.optimizers else None
        self._optimizer = opt
        self._lrs = learning_rates(opt) if opt is not None else []
        info = None
        loader = trainer.train_dataloader
        if loader is not None and hasattr(loader, "batch_size") and hasattr(loader, "dataset"):
            info = rec.loader_info(loader)
        max_epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
        with rec.lock:
            if rec.train_task is not None:
                rec.end_training()
            rec.begin_training(
                loader_info=info,
                optimizer=opt,
                model=pl_module,
                num_epochs=max_epochs,
                extra={"trainer": "lightning", "precision": str(trainer.precision)},
            )

    def _watch_saves(self, trainer: pl.Trainer) -> None:
        """Note the epoch of each checkpoint the fit writes (``trainer.save_checkpoint``, which
        ``ModelCheckpoint`` calls): the epoch whose weights the file holds, by the convention."""
        if "save_checkpoint" in vars(trainer):
            return  # already watched (a second fit of the same trainer)
        save = trainer.save_checkpoint

        def save_checkpoint(filepath: Any, *args: Any, **kwargs: Any) -> Any:
            result = save(filepath, *args, **kwargs)
            self._saved_epochs[os.fspath(filepath)] = self._epoch_started
            return result

        trainer.save_checkpoint = save_checkpoint  # type: ignore[method-assign]

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_started = trainer.current_epoch
        self._t0 = time.perf_counter()
        self._losses = Pass()
        guarded("lightning lr", self._check_lr, trainer, False)
        self._epoch_lr = self._lrs[0] if self._lrs else None

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if self._losses is not None and loss is not None and getattr(loss, "ndim", None) == 0:
            self._losses.add_loss(loss)  # no device sync per step
        if self._optimizer is not None and learning_rates(self._optimizer) != self._lrs:
            guarded("lightning lr", self._check_lr, trainer, True)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        guarded("lightning epoch", self._epoch_end, trainer)

    def _epoch_end(self, trainer: pl.Trainer) -> None:
        if trainer.sanity_checking:
            return
        m = _metrics(trainer)
        loss = _pick(m, _LOSS)
        own = self._losses.mean_loss() if self._losses is not None else None
        row: dict[str, Any] = {
            "timestamp": timestamp(),
            "elapsed_time": time.perf_counter() - self._t0,
            "loss": loss if loss is not None else own,
            "accuracy": _pick(m, _ACC),
            "val_loss": _pick(m, _VAL_LOSS),
            "val_accuracy": _pick(m, _VAL_ACC),
            "epoch": trainer.current_epoch,
            "steps": self._losses.steps if self._losses is not None else None,
            "global_step": trainer.global_step,
            "learning_rate": self._epoch_lr,
        }
        named = set(_LOSS + _ACC + _VAL_LOSS + _VAL_ACC)
        for key, value in m.items():
            if key not in named and not key.startswith("test_"):
                row.setdefault(semconv.sanitize_name(key), value)
        with self.rec.lock:
            self.rec.emit_epoch(row)
            self.rec.epoch = trainer.current_epoch + 1  # epochs completed

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        guarded("lightning lr", self._check_lr, trainer, False)
        guarded("lightning model file", self._model_file, trainer, pl_module)
        guarded("lightning fit end", self.rec.end_training)
        self._resume()

    def _model_file(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        ckpt = trainer.checkpoint_callback
        path = getattr(ckpt, "best_model_path", "") or getattr(ckpt, "last_model_path", "")
        if path and os.path.isfile(path):
            if path in self._saved_epochs:
                self.rec.on_save(pl_module, path, content="lightning_checkpoint", epoch=self._saved_epochs[path])
            else:
                self.rec.on_save(pl_module, path, content="lightning_checkpoint")

    # -- test -------------------------------------------------------------------------------------
    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._suspend()

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        guarded("lightning test", self._test_end, trainer)
        self._resume()

    def _test_end(self, trainer: pl.Trainer) -> None:
        m = _metrics(trainer)
        row: dict[str, Any] = {"loss": _pick(m, _TEST_LOSS), "accuracy": _pick(m, _TEST_ACC)}
        for key, value in m.items():
            if key.startswith("test_") and key not in _TEST_LOSS + _TEST_ACC:
                row[semconv.sanitize_name(key)] = value
        loaders = trainer.test_dataloaders
        loader = loaders[0] if isinstance(loaders, list | tuple) and loaders else loaders
        if loader is not None and hasattr(loader, "dataset"):
            info = self.rec.loader_info(loader)
            row["_producer"], row["_given"] = info.producer, info.given
        with self.rec.lock:
            self.rec.emit_test(row)

    # -- failure ----------------------------------------------------------------------------------
    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        guarded("lightning failure", self.rec.end_training, exception)
        while self._suspended:
            self._resume()


__all__ = ["DLProvLightningCallback"]
