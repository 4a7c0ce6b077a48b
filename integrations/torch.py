"""PyTorch: provenance of plain training loops with no code change, and of Lightning.

``opentelemetry-instrument python train.py`` (or ``TorchInstrumentor().instrument()``)
patches a few PyTorch entry points and derives, from an unmodified script, in the dataflow
``DLPROV_DATAFLOW`` (default ``torch``):

- data lineage: each ``Dataset`` a ``DataLoader`` or ``random_split`` sees becomes a
  ``loaddata`` task (class, source, length); ``random_split`` becomes a ``splitdata`` task
  (``isplitconfig``: ratio, lengths, generator seed; ``otrainset`` = the first part,
  ``otestset`` = the others); a ``Subset`` made by hand becomes a one-part split.
- ``trainmodel``: begins at the first ``loss.backward()``; ``itrainmodel`` holds the
  optimizer class, its ``defaults`` and param-group learning rates, the DataLoader's batch
  size, shuffle and workers, the model's layers (leaf modules) and parameters, the loss
  class, and ``num_epochs`` when the script names it (a variable such as ``epochs`` or
  ``args.epochs`` in the training loop's frames; else NULL).
- one ``otrainmodel`` row per full pass over a DataLoader during which ``backward()`` ran:
  elapsed time, the mean of the backpropagated losses (on an accelerator kept as detached
  tensors, summed on the device and read with one ``.item()`` per epoch, so no extra device
  sync per step; on the CPU, where ``.item()`` is a plain read, summed as floats), samples,
  batches, learning rate; and ``val_loss``/``val_accuracy`` of the evaluation pass
  that follows (a full pass without backward in which a loss module ran under
  ``torch.no_grad()`` or ``model.eval()``; accuracy for CrossEntropy/NLL/BCE losses, else
  NULL; a validation run inside the training pass, every N steps, gives the last one). A
  row is emitted when the next epoch starts (or at the end), so the evaluation and
  :func:`log_epoch` can still add to it.
- an evaluation pass that is not a validation (the one after the last epoch, when earlier
  epochs had one or when epoch 0 had none) is a ``testmodel`` task (``otestmodel``).
- ``adaptation``: each ``lr_scheduler`` step (``LRScheduler``, ``ReduceLROnPlateau``) or
  manual param-group change that alters a learning rate: ``oadaptation`` with the old and
  new rate, epoch and trigger (the scheduler class, or ``param_groups``). Changes within a
  training pass (per-step schedules) are grouped into one task per pass.
- ``otrainedmodel``: each ``torch.save`` of a module or a (state) dict to a path: path,
  size, sha256.
- a training that raises (uncaught) ends its task and the execution FAILED with the error.

In a multi-process job (torchrun) all ranks share one execution (see
:mod:`dlprov_otel.ranks`); lineage, hyperparameters and adaptations are recorded by rank 0
only, epochs, tests and saved models by every rank (``rank`` column). Nothing is recorded
in forked processes (DataLoader workers).

What cannot be inferred: :func:`log_epoch`, :func:`log_test`, :func:`log_params`,
:func:`finish`; and :class:`DLProvLightningCallback` for ``lightning.pytorch`` (added to
every ``Trainer`` automatically while instrumented). Provenance errors are logged once and
never reach the training; ``uninstrument()`` restores every patched attribute.
"""

from __future__ import annotations

import atexit
import datetime as dt
import json
import logging
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import wrapt
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from dlprov_otel import pythonic, ranks, semconv, tracing
from dlprov_otel.api import DataSet, Task
from dlprov_otel.model import Dataflow
from dlprov_otel.values import to_number

from .lineage import file_digest, log_once

if TYPE_CHECKING:
    from .lightning_callback import DLProvLightningCallback

logger = logging.getLogger(__name__)

DATAFLOW_ENV = "DLPROV_DATAFLOW"
DEFAULT_DATAFLOW = "torch"
_FOLD = 64  # device losses kept before they are summed on the device (no sync, few objects)
_EPOCH_NAMES = (
    "num_epochs", "n_epochs", "epochs", "max_epochs", "nb_epochs", "total_epochs",
    "NUM_EPOCHS", "N_EPOCHS", "EPOCHS", "MAX_EPOCHS",
)  # fmt: skip
_CONFIG_NAMES = ("args", "opt", "config", "cfg", "hparams", "params")
_SOURCE_ATTRS = ("root", "data_dir", "root_dir", "path", "file", "filename", "csv_file", "img_dir")

# Forked children (DataLoader workers) inherit the patches; they must record nothing.
_in_child = False


def _after_fork_in_child() -> None:
    global _in_child
    _in_child = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _now() -> str:
    return dt.datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def _json(value: Any) -> str:
    def default(o: Any) -> Any:
        try:
            return to_number(o)
        except (TypeError, ValueError):
            return str(o)

    return json.dumps(value, default=default, sort_keys=True)


def _lrs(optimizer: Any) -> list[float | None]:
    return [to_number(g.get("lr")) for g in optimizer.param_groups]


def _ref(obj: Any) -> Callable[[], Any]:
    """A weak reference when the object allows one, else a strong one."""
    try:
        return weakref.ref(obj)
    except TypeError:
        return lambda: obj


# --- a pass over a DataLoader ------------------------------------------------------------
class _LoaderInfo:
    __slots__ = ("batch_size", "drop_last", "num_workers", "producer", "sampler", "samples", "shuffle")

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
        self.producer: tuple[str, str, Task | None] | None = None

    def facts(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "shuffle": int(self.shuffle),
            "num_workers": self.num_workers,
            "drop_last": int(self.drop_last),
            "sampler": self.sampler,
            "train_samples": self.samples,
        }


class _Pass:
    """Accumulators of one pass over a DataLoader (or of the steps outside any pass)."""

    __slots__ = (
        "correct", "cpu_sum", "eval_calls", "eval_cpu_sum", "eval_losses", "eval_n", "eval_partial", "extra",
        "grad", "info", "loader", "losses", "partial", "steps", "t0", "total",
    )  # fmt: skip

    def __init__(self, loader: Any = None, info: _LoaderInfo | None = None, grad: bool = True) -> None:
        self.loader = _ref(loader) if loader is not None else None
        self.info = info
        self.grad = grad
        self.t0 = time.perf_counter()
        # Losses of backward() calls. On the CPU, .item() is a plain read: summed as floats,
        # nothing is kept. On an accelerator, .item() would wait for the device: the detached
        # 0-d tensors are kept and summed on the device every _FOLD steps, read once per epoch.
        self.cpu_sum = 0.0
        self.losses: list[Any] = []
        self.partial: Any = None  # folded sum of earlier device losses (float64 tensor)
        self.steps = 0
        self.eval_cpu_sum = 0.0
        self.eval_losses: list[Any] = []
        self.eval_partial: Any = None
        self.eval_n = 0  # scalar evaluation losses
        self.eval_calls = 0
        self.correct: Any = None  # device tensor: correctly classified samples
        self.total = 0
        self.extra: dict[str, Any] = {}

    @staticmethod
    def _fold(values: list[Any], partial: Any) -> Any:
        import torch

        try:
            s = torch.stack(values).sum(dtype=torch.float64)
        except (RuntimeError, TypeError):  # no float64 (MPS) or mixed devices
            s = torch.stack([v.float().cpu() for v in values]).sum(dtype=torch.float64)
        return s if partial is None else partial + s.to(partial.device)

    def add_loss(self, loss: Any) -> None:
        if loss.is_cpu:
            self.cpu_sum += loss.item()
        else:
            self.losses.append(loss.detach())
            if len(self.losses) >= _FOLD:
                self.partial = self._fold(self.losses, self.partial)
                self.losses = []
        self.steps += 1

    def mean_loss(self) -> float | None:
        if not self.steps:
            return None
        total = self.cpu_sum
        device = self._fold(self.losses, self.partial) if self.losses else self.partial
        if device is not None:
            total += float(device.item())  # the one device sync of the epoch
        return total / self.steps

    def add_eval(self, loss_module: Any, out: Any, args: tuple, kwargs: dict) -> None:
        self.eval_calls += 1
        if getattr(out, "ndim", None) == 0:
            self.eval_n += 1
            if out.is_cpu:
                self.eval_cpu_sum += out.item()
            else:
                self.eval_losses.append(out.detach())
                if len(self.eval_losses) >= _FOLD:
                    self.eval_partial = self._fold(self.eval_losses, self.eval_partial)
                    self.eval_losses = []
        inp = args[0] if args else kwargs.get("input")
        tgt = args[1] if len(args) > 1 else kwargs.get("target")
        hit = _correct(loss_module, inp, tgt)
        if hit is not None:
            self.correct = hit[0] if self.correct is None else self.correct + hit[0]
            self.total += hit[1]

    def eval_metrics(self) -> dict[str, Any]:
        loss = None
        if self.eval_n:
            total = self.eval_cpu_sum
            device = self._fold(self.eval_losses, self.eval_partial) if self.eval_losses else self.eval_partial
            if device is not None:
                total += float(device.item())
            loss = total / self.eval_n
        acc = float(self.correct.item()) / self.total if self.correct is not None and self.total else None
        return {"loss": loss, "accuracy": acc}


def _correct(loss_module: Any, inp: Any, tgt: Any) -> tuple[Any, int] | None:
    """(correct predictions as a device tensor, predictions) of a batch, when the loss class
    says what a prediction is (class scores or binary logits/probabilities)."""
    import torch

    if not isinstance(inp, torch.Tensor) or not isinstance(tgt, torch.Tensor):
        return None
    name = type(loss_module).__name__
    if name in ("CrossEntropyLoss", "NLLLoss"):
        if inp.ndim == 2 and tgt.ndim == 1 and not tgt.is_floating_point() and inp.shape[0] == tgt.shape[0]:
            return (inp.detach().argmax(1) == tgt).sum(), int(tgt.shape[0])
        return None
    if name in ("BCEWithLogitsLoss", "BCELoss") and inp.shape == tgt.shape:
        threshold = 0.0 if name == "BCEWithLogitsLoss" else 0.5
        return ((inp.detach() > threshold) == (tgt > 0.5)).sum(), tgt.numel()
    return None


# --- the recorder ----------------------------------------------------------------------------
class Recorder:
    """What one process learns about its trainings, and the tasks it records from it.

    Shared by the patches, the explicit API and the Lightning callback. ``suspended`` > 0
    turns the automatic capture of loops off (the Lightning callback records instead).
    """

    def __init__(self, dataflow: str | None = None, execution_tag: str | None = None) -> None:
        self.dataflow_tag = dataflow or os.environ.get(DATAFLOW_ENV) or DEFAULT_DATAFLOW
        self.execution_tag = execution_tag
        self._df: Dataflow | None = None
        self.lock = threading.RLock()
        job = ranks.current_job()
        self.rank = job.rank if job else 0
        self.world_size = job.world_size if job else 1
        self.primary = self.rank == 0
        self.suspended = 0
        self._counters: dict[str, int] = {}
        self._producers: dict[int, tuple[tuple[str, str, Task | None], Callable[[], Any]]] = {}
        self._loaders: weakref.WeakKeyDictionary[Any, _LoaderInfo] = weakref.WeakKeyDictionary()
        self._optimizer: Callable[[], Any] | None = None
        self._model: Callable[[], Any] | None = None
        self.loss_name: str | None = None
        self._hooks: tuple[Any, Any] | None = None
        self._depth = 0
        self._candidate: Any = None
        self.train_task: Task | None = None
        self.trainings = 0
        self.epoch = 0  # training epochs completed in the current training
        self.validated = False  # an earlier epoch of this training had a validation pass
        self.passes: dict[int, _Pass] = {}
        self._stack: list[_Pass] = []
        self._orphan = _Pass()
        self._cur = self._orphan
        self._orphan_t0 = time.perf_counter()
        self.pending_epoch: dict[str, Any] | None = None
        self.pending_test: dict[str, Any] | None = None
        self._lrs: dict[int, list[float | None]] = {}
        self._adaptations: list[dict[str, Any]] = []
        self.params: dict[str, Any] = {}
        self.num_epochs: int | None = None

    # -- where tasks go -------------------------------------------------------------------
    def context(self) -> tuple[Dataflow, str]:
        """The dataflow and execution tag, resolved on first use."""
        if self._df is not None and self.execution_tag is not None:
            return self._df, self.execution_tag
        ex = pythonic.current_execution()
        if ex is not None and self.execution_tag is None:
            tag, df_tag = ex.tag, ex.dataflow
        else:
            df_tag = self.dataflow_tag
            tag = self.execution_tag or pythonic.current_execution_tag(df_tag)
        try:
            df = tracing.lookup_dataflow(df_tag)
        except Exception:
            df = Dataflow(df_tag, predefined=True)
        # record the spec in this pipeline's store even when an earlier one saw it
        df.saved_hash = None
        df.save()
        self._df, self.execution_tag = df, str(tag)
        return df, self.execution_tag

    def _next_id(self, transformation: str, per_rank: bool = False) -> str:
        # Deterministic ids: every rank of a job computes the same ones for rank 0's tasks.
        n = self._counters[transformation] = self._counters.get(transformation, 0) + 1
        suffix = f"-rank{self.rank}" if per_rank and self.rank else ""
        return f"{transformation}-{n}{suffix}"

    def _task(self, transformation: str, task_id: str, deps: list[tuple[str, str, Task | None]]) -> Task:
        df, exec_tag = self.context()
        task = Task(task_id, df, exec_tag, transformation)
        for dep_id, dep_dt, dep_task in deps:
            task.dependencies.append(dep_task if dep_task is not None else (dep_id, dep_dt))
        return task

    # -- lineage ----------------------------------------------------------------------------
    def producer_of(self, dataset: Any, shuffle: bool = False) -> tuple[str, str, Task | None] | None:
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

    def _remember(self, dataset: Any, producer: tuple[str, str, Task | None]) -> None:
        self._producers[id(dataset)] = (producer, _ref(dataset))

    def _record_load(self, dataset: Any) -> tuple[str, str, Task | None]:
        tid = self._next_id("loaddata")
        task = None
        if self.primary:
            desc_in, desc_out = _describe_dataset(dataset)
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
        parent: tuple[str, str, Task | None] | None,
        parts: list[Any],
        method: str,
        generator: Any,
        roles: list[str] | None = None,
    ) -> tuple[str, str, Task | None]:
        tid = self._next_id("splitdata")
        task = None
        if self.primary:
            total = _len(dataset)
            lengths = [_len(p) for p in parts]
            config: dict[str, Any] = {
                "ratio": (lengths[0] / total) if total and lengths[0] is not None else None,
                "lengths": _json(lengths),
                "num_parts": len(parts),
                "method": method,
            }
            if generator is not None:
                config["seed"] = str(generator.initial_seed())  # TEXT: a 64-bit seed is exact
            task = self._task("splitdata", tid, [parent] if parent else [])
            task.add_dataset(DataSet("isplitconfig", [config]))
            task.begin()
            source = _dataset_ref(dataset)
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

    def loader_info(self, loader: Any) -> _LoaderInfo:
        """Settings and lineage of a DataLoader (lineage recorded on first sight)."""
        info = self._loaders.get(loader)
        if info is None:
            info = self._loaders[loader] = _LoaderInfo(loader)
            try:
                info.producer = self.producer_of(loader.dataset, info.shuffle)
            except Exception as exc:  # the epochs are still worth recording without lineage
                log_once("torch DataLoader", exc)
        return info

    # -- model and optimizer ------------------------------------------------------------------
    def on_optimizer(self, optimizer: Any) -> None:
        with self.lock:
            current = self._optimizer() if self._optimizer else None
            if self.train_task is not None and current is not None and current is not optimizer:
                self.end_training()  # a new optimizer: a new training begins
            self._optimizer = _ref(optimizer)
            self._lrs[id(optimizer)] = _lrs(optimizer)
            self.arm_model_hooks()

    @property
    def optimizer(self) -> Any:
        return self._optimizer() if self._optimizer else None

    @property
    def model(self) -> Any:
        return self._model() if self._model else None

    def arm_model_hooks(self) -> None:
        """Find the model: the first outermost module with parameters that runs a forward."""
        if self._hooks is not None:
            return
        from torch.nn.modules import module as nn_module

        self._depth = 0
        self._hooks = (
            nn_module.register_module_forward_pre_hook(self._pre_forward),
            nn_module.register_module_forward_hook(self._post_forward, always_call=True),
        )

    def disarm_model_hooks(self) -> None:
        hooks, self._hooks = self._hooks, None
        for h in hooks or ():
            h.remove()

    def _pre_forward(self, module: Any, args: Any) -> None:
        if self._depth == 0:
            self._candidate = module
        self._depth += 1

    def _post_forward(self, module: Any, args: Any, output: Any) -> None:
        self._depth -= 1
        if self._depth or module is not self._candidate or _in_child:
            return
        self._candidate = None
        try:
            from torch.nn.modules.loss import _Loss

            if isinstance(module, _Loss) or next(module.parameters(), None) is None:
                return
            self._model = _ref(module)
            self.disarm_model_hooks()
        except Exception as exc:
            log_once("torch model detection", exc)

    def model_in_eval(self) -> bool:
        m = self.model
        return m is not None and not m.training

    # -- training steps -------------------------------------------------------------------------
    def on_backward(self, loss: Any) -> None:
        cur = self._cur
        cur.add_loss(loss)  # no device sync
        if cur.steps == 1:  # first step of a pass: the previous epoch is complete
            with self.lock:
                try:
                    self._first_step(cur)
                except Exception as exc:
                    log_once("torch training begin", exc)

    def _first_step(self, cur: _Pass) -> None:
        self.flush_pending()
        if self.train_task is None:
            self.begin_training(loader_info=cur.info)
        self._check_manual_lr()

    def on_eval_loss(self, loss_module: Any, out: Any, args: tuple, kwargs: dict) -> None:
        self._cur.add_eval(loss_module, out, args, kwargs)

    # -- passes ---------------------------------------------------------------------------------
    def on_pass_start(self, loader: Any, iterator: Any, t0: float, grad: bool) -> None:
        with self.lock:
            info = self.loader_info(loader)
            p = _Pass(loader, info, grad)
            p.t0 = t0
            # a pass of the same loader that never finished (break) is abandoned
            self._stack = [q for q in self._stack if q.loader is None or q.loader() is not loader][-7:]
            self.passes = {k: q for k, q in self.passes.items() if q in self._stack}
            self.passes[id(iterator)] = p
            self._stack.append(p)
            self._cur = p

    def on_pass_end(self, iterator: Any) -> None:
        with self.lock:
            p = self.passes.pop(id(iterator), None)
            if p is None:
                return
            if p in self._stack:
                self._stack.remove(p)
            self._cur = self._stack[-1] if self._stack else self._orphan
            batches = getattr(iterator, "_num_yielded", None)
            if p.steps:
                self._end_train_pass(p, batches)
            elif p.eval_calls:
                self._end_eval_pass(p, batches)
            if self._adaptations and not any(q.steps for q in self._stack):
                self._flush_adaptations()

    @staticmethod
    def _samples(p: _Pass, batches: int | None) -> int | None:
        info = p.info
        if info is None or batches is None or info.batch_size is None:
            return None
        n = batches * info.batch_size
        return min(n, info.samples) if info.samples is not None else n

    def _end_train_pass(self, p: _Pass, batches: int | None) -> None:
        if self.train_task is None:
            self.begin_training(loader_info=p.info)
        elapsed = time.perf_counter() - p.t0
        row: dict[str, Any] = {
            "timestamp": _now(),
            "elapsed_time": elapsed,
            "loss": p.mean_loss(),
            "accuracy": None,
            "val_loss": None,
            "val_accuracy": None,
            "epoch": self.epoch,
            "samples": self._samples(p, batches),
            "batches": batches,
            "steps": p.steps,
            "learning_rate": self._current_lr(),
        }
        row.update(p.extra)
        self.epoch += 1
        self.flush_pending()
        self.pending_epoch = row

    def _end_eval_pass(self, p: _Pass, batches: int | None) -> None:
        m = p.eval_metrics()
        samples = self._samples(p, batches)
        training = next((q for q in reversed(self._stack) if q.steps), None)
        if training is not None:  # a validation within the epoch: the epoch's row keeps the last
            training.extra.update(val_loss=m["loss"], val_accuracy=m["accuracy"], val_samples=samples)
            self.validated = True
            return
        pe = self.pending_epoch
        if pe is not None and "val_samples" not in pe and (pe["epoch"] == 0 or self.validated):
            pe.update(val_loss=m["loss"], val_accuracy=m["accuracy"], val_samples=samples)
            self.validated = True
            return
        self.flush_pending()
        self.pending_test = {
            "loss": m["loss"],
            "accuracy": m["accuracy"],
            "samples": samples,
            "batches": batches,
            "_producer": p.info.producer if p.info else None,
        }

    def _current_lr(self) -> float | None:
        opt = self.optimizer
        if opt is None:
            return None
        lrs = _lrs(opt)
        return lrs[0] if lrs else None

    # -- emitting ---------------------------------------------------------------------------------
    def flush_pending(self) -> None:
        """Emit the epoch row and the test waiting for more metrics."""
        row, self.pending_epoch = self.pending_epoch, None
        if row is not None and self.train_task is not None:
            self.train_task.add_dataset(DataSet("otrainmodel", [row]))
            self.train_task.save()
        test, self.pending_test = self.pending_test, None
        if test is not None:
            self.emit_test(test)
        if self._adaptations:
            self._flush_adaptations()

    def begin_training(
        self,
        loader_info: _LoaderInfo | None = None,
        optimizer: Any = None,
        model: Any = None,
        num_epochs: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Task:
        """Start a ``trainmodel`` task (with ``itrainmodel`` on rank 0)."""
        self.trainings += 1
        self.epoch = 0
        self.validated = False
        self._counters.setdefault("trainmodel", 0)
        tid = self._next_id("trainmodel", per_rank=True)
        deps = [loader_info.producer] if loader_info is not None and loader_info.producer else []
        task = self._task("trainmodel", tid, deps)
        if self.primary:
            row = self._hyperparameters(loader_info, optimizer, model, num_epochs)
            row.update(extra or {})
            row.update(self.params)
            task.add_dataset(DataSet("itrainmodel", [row]))
        task.begin()
        self.train_task = task
        opt = optimizer or self.optimizer
        if opt is not None:
            self._lrs[id(opt)] = _lrs(opt)
        return task

    def _hyperparameters(
        self, info: _LoaderInfo | None, optimizer: Any, model: Any, num_epochs: int | None
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "optimizer_name": None,
            "learning_rate": None,
            "num_epochs": num_epochs if num_epochs is not None else self.num_epochs,
            "num_layers": None,
            "batch_size": info.batch_size if info else None,
        }
        opt = optimizer or self.optimizer
        if opt is not None:
            row["optimizer_name"] = type(opt).__name__
            try:
                row.update(_optimizer_facts(opt))
            except Exception as exc:
                log_once("torch optimizer facts", exc)
        m = model or self.model
        if m is not None:
            try:
                row.update(_model_facts(m))
            except Exception as exc:
                log_once("torch model facts", exc)
        elif opt is not None:
            try:
                row["num_parameters"] = sum(p.numel() for g in opt.param_groups for p in g["params"])
            except Exception as exc:
                log_once("torch parameter count", exc)
        if info is not None:
            row.update({k: v for k, v in info.facts().items() if k != "batch_size"})
        if row["num_epochs"] is None:
            row["num_epochs"] = _guess_epochs()
        if self.loss_name:
            row["loss_function"] = self.loss_name
        if self.world_size > 1:
            row["world_size"] = self.world_size
        return row

    def emit_epoch(self, row: Mapping[str, Any]) -> None:
        """Record one ``otrainmodel`` row now (the training task begins if needed)."""
        if self.train_task is None:
            self.begin_training()
        self.train_task.add_dataset(DataSet("otrainmodel", [dict(row)]))
        self.train_task.save()

    def emit_test(self, row: Mapping[str, Any]) -> None:
        """A ``testmodel`` task with one ``otestmodel`` row."""
        row = dict(row)
        producer = row.pop("_producer", None)
        deps: list[tuple[str, str, Task | None]] = []
        if self.train_task is not None:
            deps.append((self.train_task.id, "trainmodel", self.train_task))
        if producer:
            deps.append(producer)
        task = self._task("testmodel", self._next_id("testmodel", per_rank=True), deps)
        task.begin()
        task.add_dataset(DataSet("otestmodel", [row]))
        task.end()

    # -- learning rates ---------------------------------------------------------------------------
    def on_lr_change(
        self, optimizer: Any, old: list, new: list, trigger: str, step: Any = None, epoch: int | None = None
    ) -> None:
        """Record changed learning rates (grouped per training pass when made within one)."""
        with self.lock:
            self._lrs[id(optimizer)] = list(new)
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
                    "timestamp": _now(),
                    "param_group": group,
                }
                if step is not None:
                    row["scheduler_step"] = step
                self._adaptations.append(row)
            if not training:
                self._flush_adaptations()

    def note_lrs(self, optimizer: Any) -> None:
        self._lrs[id(optimizer)] = _lrs(optimizer)

    def _check_manual_lr(self) -> None:
        opt = self.optimizer
        if opt is None:
            return
        now = _lrs(opt)
        before = self._lrs.get(id(opt))
        if before is not None and before != now:
            # seen at the first step of a pass: made after the epoch that ended
            self.on_lr_change(opt, before, now, "param_groups", epoch=max(self.epoch - 1, 0))
            self._flush_adaptations()
        self._lrs[id(opt)] = now

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

    # -- saved models -----------------------------------------------------------------------------
    def on_save(self, obj: Any, path: str | os.PathLike[str], content: str | None = None) -> None:
        """Record a saved model file as ``otrainedmodel`` of the current training."""
        with self.lock:
            import torch

            size, digest = file_digest(path)
            is_module = isinstance(obj, torch.nn.Module)
            if content is None:
                if is_module:
                    content = "module"
                elif isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
                    content = "state_dict"
                else:
                    content = "checkpoint"
            model = obj if is_module else self.model
            name = type(_unwrap(model)).__name__ if model is not None else Path(path).stem
            row = {
                "model_name": name,
                "model_dir": os.path.abspath(os.fspath(path)),
                "size_bytes": size,
                "sha256": digest,
                "content": content,
                "epoch": self.epoch,
            }
            if self.train_task is None:
                self.begin_training()
            self.train_task.add_dataset(DataSet("otrainedmodel", [row]))
            self.train_task.save()

    # -- the end --------------------------------------------------------------------------------
    def end_training(self, error: BaseException | str | None = None) -> None:
        """Emit what is pending and end the ``trainmodel`` task."""
        with self.lock:
            self.flush_pending()
            task, self.train_task = self.train_task, None
            if task is not None:
                task.end(error=error)
            self.epoch = 0
            self._orphan = _Pass()
            if not self._stack:
                self._cur = self._orphan

    def finish(self, error: BaseException | None = None) -> None:
        """End the training; with ``error``, also the execution (FAILED)."""
        self.end_training(error)
        if error is not None and self.execution_tag is not None:
            for ex in tracing.open_executions():
                if ex.tag == self.execution_tag:
                    ex.end(error=error)


def _len(obj: Any) -> int | None:
    try:
        return len(obj)
    except Exception:
        return None


def _unwrap(model: Any) -> Any:
    inner = getattr(model, "module", None)
    if inner is not None and type(model).__name__ in ("DistributedDataParallel", "DataParallel"):
        return inner
    return model


def _dataset_source(dataset: Any) -> str | None:
    for attr in _SOURCE_ATTRS:
        value = getattr(dataset, attr, None)
        if isinstance(value, str | os.PathLike) and str(value):
            return os.path.abspath(os.fspath(value))
    return None


def _dataset_ref(dataset: Any) -> str:
    return _dataset_source(dataset) or f"memory:{type(dataset).__name__}"


def _describe_dataset(dataset: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    cls = type(dataset)
    qual = f"{cls.__module__}.{cls.__qualname__}"
    source = _dataset_source(dataset)
    inp = {"dataset_name": cls.__name__, "dataset_source": source or qual, "dataset_class": qual}
    out: dict[str, Any] = {"dataset_dir": _dataset_ref(dataset), "num_samples": _len(dataset)}
    tensors = getattr(dataset, "tensors", None)
    if isinstance(tensors, tuple):  # TensorDataset
        out["shapes"] = _json([list(t.shape) for t in tensors])
        out["dtypes"] = _json([str(t.dtype) for t in tensors])
    train = getattr(dataset, "train", None)
    if isinstance(train, bool):  # torchvision datasets: the train or the test part
        out["dataset_split"] = "train" if train else "test"
    return inp, out


def _optimizer_facts(opt: Any) -> dict[str, Any]:
    lrs = _lrs(opt)
    facts: dict[str, Any] = {
        "learning_rate": lrs[0] if lrs else None,
        "param_groups": len(lrs),
        "optimizer_defaults": _json(dict(opt.defaults)),
    }
    if len(lrs) > 1:
        facts["learning_rates"] = _json(lrs)
    for key, value in opt.defaults.items():
        if isinstance(value, bool) or value is None:
            continue
        try:
            facts[semconv.sanitize_name(f"opt_{key}")] = to_number(value)
        except (TypeError, ValueError):
            continue
    return facts


def _model_facts(model: Any) -> dict[str, Any]:
    m = _unwrap(model)
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


def _guess_epochs() -> int | None:
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


# --- the active recorder -----------------------------------------------------------------------
_recorder: Recorder | None = None  # the instrumented one (patches feed it)
_standalone: Recorder | None = None  # for the explicit API without instrumentation
_tls = threading.local()


def get_recorder() -> Recorder:
    """The recorder of this process (the instrumentor's, else a standalone one)."""
    global _standalone
    if _recorder is not None:
        return _recorder
    if _standalone is None:
        _standalone = Recorder()
    return _standalone


def _guard(where: str, fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except Exception as exc:
        log_once(where, exc)
        return None


# --- explicit API ------------------------------------------------------------------------------
def _clean(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {semconv.sanitize_name(k): v for k, v in metrics.items()}


def log_epoch(epoch: int | None = None, **metrics: Any) -> None:
    """Add metrics to the epoch row in progress, or record an epoch row yourself.

    After (or during) an automatically detected epoch the metrics join its row. Otherwise
    (no instrumentation, or a loop without a DataLoader) one ``otrainmodel`` row is recorded
    now, with ``loss`` defaulting to the mean of the losses backpropagated since the last
    epoch.
    """
    rec = get_recorder()

    def go() -> None:
        with rec.lock:
            values = _clean(metrics)
            if rec.pending_epoch is not None:
                rec.pending_epoch.update(values)
                return
            if rec._cur is not rec._orphan:
                rec._cur.extra.update(values)
                return
            cur = rec._orphan
            row: dict[str, Any] = {
                "timestamp": _now(),
                "elapsed_time": time.perf_counter() - rec._orphan_t0,
                "loss": cur.mean_loss(),
                "accuracy": None,
                "val_loss": None,
                "val_accuracy": None,
                "epoch": rec.epoch if epoch is None else epoch,
                "steps": cur.steps,
            }
            row.update(values)
            rec.flush_pending()
            rec.emit_epoch(row)
            rec.epoch = (rec.epoch if epoch is None else epoch) + 1
            rec._orphan = _Pass()
            rec._orphan_t0 = time.perf_counter()
            if not rec._stack:
                rec._cur = rec._orphan

    _guard("log_epoch", go)


def log_test(**metrics: Any) -> None:
    """Add metrics to the test just detected, or record a ``testmodel`` task (``otestmodel``)."""
    rec = get_recorder()

    def go() -> None:
        with rec.lock:
            values = _clean(metrics)
            if rec.pending_test is not None:
                rec.pending_test.update(values)
                return
            rec.flush_pending()
            row = {"loss": None, "accuracy": None}
            if rec._orphan.eval_calls:
                row.update(rec._orphan.eval_metrics())
                rec._orphan.eval_losses, rec._orphan.eval_partial = [], None
                rec._orphan.eval_calls, rec._orphan.correct, rec._orphan.total = 0, None, 0
            row.update(values)
            rec.emit_test(row)

    _guard("log_test", go)


def log_params(**values: Any) -> None:
    """Hyperparameters for ``itrainmodel`` (``num_epochs=10``...): merged into the next
    training's row, or recorded as one more ``itrainmodel`` element of a running training."""
    rec = get_recorder()

    def go() -> None:
        with rec.lock:
            clean = _clean(values)
            if "num_epochs" in clean:
                rec.num_epochs = int(clean["num_epochs"])
            if rec.train_task is None:
                rec.params.update(clean)
            elif rec.primary:
                row = {"optimizer_name": None, "learning_rate": None, "num_epochs": None, "num_layers": None}
                rec.train_task.add_dataset(DataSet("itrainmodel", [{**row, **clean}]))
                rec.train_task.save()

    _guard("log_params", go)


def finish(error: BaseException | None = None) -> None:
    """Record what is pending and end the training task (FAILED with ``error``)."""
    _guard("finish", get_recorder().finish, error)


# --- patches -----------------------------------------------------------------------------------
class _Patches:
    """wrapt wrappers set on classes and modules, removed exactly (inherited ones deleted)."""

    def __init__(self) -> None:
        self.applied: list[tuple[Any, str, bool, Any]] = []

    def wrap(self, owner: Any, name: str, wrapper: Callable[..., Any]) -> None:
        """Wrap ``owner.name`` with a wrapt ``wrapper(wrapped, instance, args, kwargs)``."""
        self._set(owner, name, wrapt.FunctionWrapper(getattr(owner, name), wrapper))

    def replace(self, owner: Any, name: str, factory: Callable[[Any], Callable[..., Any]]) -> None:
        """Replace a method called once per training step by ``factory(original)``.

        wrapt costs about 0.8 µs per call, more than everything these wrappers do; a plain
        function costs a quarter of that (bench/bench_torch_overhead.py).
        """
        original = getattr(owner, name)
        replacement = factory(original)
        replacement.__wrapped__ = original  # type: ignore[attr-defined]
        replacement.__doc__ = original.__doc__
        self._set(owner, name, replacement)

    def _set(self, owner: Any, name: str, value: Any) -> None:
        own = name in vars(owner)
        original = vars(owner)[name] if own else None
        setattr(owner, name, value)
        self.applied.append((owner, name, own, original))

    def restore(self) -> None:
        for owner, name, own, original in reversed(self.applied):
            if own:
                setattr(owner, name, original)
            else:
                try:
                    delattr(owner, name)
                except AttributeError:
                    pass
        self.applied.clear()


def _active() -> Recorder | None:
    rec = _recorder
    if rec is None or _in_child or rec.suspended:
        return None
    return rec


# -- once per step: plain functions (see _Patches.replace) --------------------------------------
def _backward_for(original: Callable[..., Any]) -> Callable[..., Any]:
    def backward(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        rec = _recorder
        if rec is not None and not rec.suspended and not _in_child:
            try:
                if self.numel() == 1:  # a scalar loss (not a vector-Jacobian product)
                    rec.on_backward(self)
            except Exception as exc:
                log_once("torch backward", exc)
        return result

    return backward


def _loss_call_for(original: Callable[..., Any]) -> Callable[..., Any]:
    is_grad_enabled = sys.modules["torch"].is_grad_enabled

    def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
        out = original(self, *args, **kwargs)
        rec = _recorder
        if rec is not None and not rec.suspended and not _in_child:
            try:
                model = rec._model() if rec._model is not None else None
                if is_grad_enabled() and (model is None or model.training):
                    if rec.loss_name is None:
                        rec.loss_name = type(self).__name__
                else:
                    rec.on_eval_loss(self, out, args, kwargs)
            except Exception as exc:
                log_once("torch loss", exc)
        return out

    return __call__


def _next_for(original: Callable[..., Any]) -> Callable[..., Any]:
    def __next__(self: Any) -> Any:
        try:
            return original(self)
        except StopIteration:  # the pass is complete
            rec = _recorder
            if rec is not None and not _in_child:
                _guard("torch epoch", rec.on_pass_end, self)
            raise

    return __next__


def _w_loader_init(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    result = wrapped(*args, **kwargs)
    rec = _active()
    if rec is not None:
        with rec.lock:
            _guard("torch DataLoader", rec.loader_info, instance)
    return result


def _w_loader_iter(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    rec = _active()
    if rec is None:
        return wrapped(*args, **kwargs)
    import torch

    t0 = time.perf_counter()
    grad = torch.is_grad_enabled()
    iterator = wrapped(*args, **kwargs)
    _guard("torch DataLoader pass", rec.on_pass_start, instance, iterator, t0, grad)
    return iterator


def _w_random_split(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    parts = wrapped(*args, **kwargs)
    rec = _active()
    if rec is not None:
        import torch

        dataset = args[0] if args else kwargs.get("dataset")
        generator = args[2] if len(args) > 2 else kwargs.get("generator", torch.default_generator)
        _guard("torch random_split", rec.on_random_split, dataset, parts, generator)
    return parts


def _w_optimizer_init(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    result = wrapped(*args, **kwargs)
    rec = _active()
    if rec is not None:
        _guard("torch optimizer", rec.on_optimizer, instance)
    return result


def _w_scheduler_step(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    rec = _active()
    depth = getattr(_tls, "depth", 0)
    if rec is None or depth:  # a scheduler stepping its children records once, outermost
        return wrapped(*args, **kwargs)
    opt = getattr(instance, "optimizer", None)
    before = _guard("torch lr_scheduler", _lrs, opt) if opt is not None else None
    _tls.depth = depth + 1
    try:
        result = wrapped(*args, **kwargs)
    finally:
        _tls.depth = depth
    if before is not None:
        if getattr(instance, "_step_count", None) == 1:
            # the step LRScheduler.__init__ makes: the starting rate, not an adaptation
            _guard("torch lr_scheduler", rec.note_lrs, opt)
            return result
        after = _guard("torch lr_scheduler", _lrs, opt)
        if after is not None and after != before:
            step = getattr(instance, "last_epoch", None)
            _guard("torch lr_scheduler", rec.on_lr_change, opt, before, after, type(instance).__name__, step)
    return result


def _w_save(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
    result = wrapped(*args, **kwargs)
    rec = _active()
    if rec is not None:
        obj = args[0] if args else kwargs.get("obj")
        f = args[1] if len(args) > 1 else kwargs.get("f")
        if isinstance(f, str | os.PathLike):
            import torch

            if isinstance(obj, torch.nn.Module | Mapping):
                _guard("torch.save", rec.on_save, obj, f)
    return result


def _excepthook_for(previous: Callable[..., Any]) -> Callable[..., Any]:
    def hook(exc_type: type[BaseException], exc: BaseException, tb: Any) -> None:
        rec = _recorder
        if rec is not None and not _in_child:
            _guard("torch failure", rec.finish, exc)
        previous(exc_type, exc, tb)

    hook._dlprov = True  # type: ignore[attr-defined]
    return hook


def _finish_at_exit() -> None:
    rec = _recorder
    if rec is not None and not _in_child:
        _guard("torch finish", rec.finish)


class TorchInstrumentor(BaseInstrumentor):
    """Zero-code provenance for PyTorch training (entry point ``dlprov_torch``).

    ``instrument(dataflow=None, execution_tag=None, lightning=True)``: the dataflow
    (default ``DLPROV_DATAFLOW`` or ``torch``), an execution tag (default: the execution in
    scope, else one per process, shared by the ranks of a job), and whether every
    ``lightning.pytorch.Trainer`` gets a :class:`DLProvLightningCallback`.
    """

    _generation = 0

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("torch >= 2.0",)

    def _instrument(self, **kwargs: Any) -> None:
        global _recorder
        TorchInstrumentor._generation += 1
        gen = TorchInstrumentor._generation
        self._patches = _Patches()
        self._recorder = _recorder = Recorder(kwargs.get("dataflow"), kwargs.get("execution_tag"))

        # Hooks of an earlier instrument() (wrapt cannot remove them) see another generation.
        def on_torch(module: Any) -> None:
            if gen == TorchInstrumentor._generation:
                _guard("torch instrumentation", self._patch_torch)

        def on_lightning(module: Any) -> None:
            if gen == TorchInstrumentor._generation:
                _guard("lightning instrumentation", self._patch_lightning)

        # torch is patched when the script imports it (at once if it is imported already)
        wrapt.register_post_import_hook(on_torch, "torch")
        if kwargs.get("lightning", True):
            wrapt.register_post_import_hook(on_lightning, "lightning.pytorch")
        self._previous_hook = sys.excepthook
        sys.excepthook = _excepthook_for(sys.excepthook)
        atexit.register(_finish_at_exit)

    def _patch_torch(self) -> None:
        import torch
        import torch.utils.data as tud
        import torch.utils.data.dataloader as tdl
        import torch.utils.data.dataset as tds
        from torch.nn.modules import loss as nn_loss
        from torch.optim import lr_scheduler

        p = self._patches
        if any(owner is torch.Tensor for owner, *_ in p.applied):
            return
        p.replace(torch.Tensor, "backward", _backward_for)
        p.replace(nn_loss._Loss, "__call__", _loss_call_for)
        p.replace(tdl._BaseDataLoaderIter, "__next__", _next_for)
        p.wrap(tdl.DataLoader, "__init__", _w_loader_init)
        p.wrap(tdl.DataLoader, "__iter__", _w_loader_iter)
        # the same functions under two names each: whichever name a script uses
        p.wrap(tds, "random_split", _w_random_split)
        p.wrap(tud, "random_split", _w_random_split)
        p.wrap(torch, "save", _w_save)
        p.wrap(torch.serialization, "save", _w_save)
        p.wrap(torch.optim.Optimizer, "__init__", _w_optimizer_init)
        # every scheduler class with a step of its own (ReduceLROnPlateau, SequentialLR, ...)
        for cls in vars(lr_scheduler).values():
            if isinstance(cls, type) and issubclass(cls, lr_scheduler.LRScheduler) and "step" in vars(cls):
                p.wrap(cls, "step", _w_scheduler_step)
        if self._recorder is not None:
            self._recorder.arm_model_hooks()

    def _patch_lightning(self) -> None:
        import lightning.pytorch as pl

        def init(wrapped: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
            from .lightning_callback import DLProvLightningCallback

            callbacks = kwargs.get("callbacks")
            callbacks = [callbacks] if callbacks is not None and not isinstance(callbacks, list | tuple) else callbacks
            callbacks = list(callbacks or [])
            if not any(isinstance(c, DLProvLightningCallback) for c in callbacks):
                callbacks.append(DLProvLightningCallback())
            kwargs["callbacks"] = callbacks
            return wrapped(*args, **kwargs)

        self._patches.wrap(pl.Trainer, "__init__", init)

    def _uninstrument(self, **kwargs: Any) -> None:
        global _recorder
        TorchInstrumentor._generation += 1
        rec = getattr(self, "_recorder", None)
        if rec is not None:
            _guard("torch finish", rec.finish)
            rec.disarm_model_hooks()
        self._patches.restore()
        if getattr(sys.excepthook, "_dlprov", False):
            sys.excepthook = self._previous_hook
        atexit.unregister(_finish_at_exit)
        _recorder = None
        self._recorder = None


def __getattr__(name: str) -> Any:
    # lightning is imported only when its callback is asked for
    if name == "DLProvLightningCallback":
        from .lightning_callback import DLProvLightningCallback

        return DLProvLightningCallback
    raise AttributeError(name)


__all__ = [
    "DLProvLightningCallback",
    "Recorder",
    "TorchInstrumentor",
    "finish",
    "get_recorder",
    "log_epoch",
    "log_params",
    "log_test",
]
