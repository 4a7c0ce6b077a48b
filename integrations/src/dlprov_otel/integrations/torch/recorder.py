"""The recorder: what one process learns about its trainings, and the tasks it records.

Its lineage part is :class:`~.data.DataLineage`, its learning-rate part
:class:`~.rates.LearningRates`; the passes over DataLoaders are :class:`~.passes.Pass`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from dlprov_otel import ranks, tracing
from dlprov_otel.api import Dataflow, DataSet, Task

from .._shared.context import resolve
from .._shared.guard import report
from .._shared.rows import timestamp
from .._shared.silence import training_seen
from .data import DataLineage
from .explicit import ExplicitCalls
from .facts import (
    LoaderInfo,
    Producer,
    guess_epochs,
    learning_rates,
    model_facts,
    optimizer_facts,
    reference,
)
from .forks import process
from .idle import IdleWatcher
from .models import SavedModels
from .passes import Pass
from .phases import Phases
from .rates import LearningRates

DEFAULT_DATAFLOW = "torch"


class Recorder(DataLineage, LearningRates, SavedModels, Phases, ExplicitCalls):
    """What one process learns about its trainings, and the tasks it records from it.

    Shared by the patches, the explicit API and the Lightning callback. ``suspended`` > 0
    turns the automatic capture of loops off (the Lightning callback records instead).
    """

    def __init__(self, dataflow: str | None = None, execution: str | None = None) -> None:
        DataLineage.__init__(self)
        LearningRates.__init__(self)
        SavedModels.__init__(self)
        self.dataflow_tag = dataflow  # None: resolved per task (see _shared.context)
        self.execution_tag = execution
        self.last_execution: str | None = None  # where the latest task went
        self._saved: set[str] = set()
        self.lock = threading.RLock()
        job = ranks.current_job()
        self.rank = job.rank if job else 0
        self.world_size = job.world_size if job else 1
        self.primary = self.rank == 0
        self.suspended = 0
        self._counters: dict[str, int] = {}
        self._optimizer: Callable[[], Any] | None = None
        self._model: Callable[[], Any] | None = None
        self.loss_name: str | None = None
        self._hooks: tuple[Any, Any] | None = None
        self._depth = 0
        self._candidate: Any = None
        self.train_task: Task | None = None
        self.last_train_task: Task | None = None  # the training the next test evaluates
        self.trainings = 0
        self.epoch = 0  # training epochs completed in the current training
        self.validated = False  # an earlier epoch of this training had a validation pass
        self.passes: dict[int, Pass] = {}
        self._stack: list[Pass] = []
        self._orphan = Pass()
        self._cur = self._orphan
        self._orphan_t0 = time.perf_counter()
        self.pending_epoch: dict[str, Any] | None = None
        self.pending_test: dict[str, Any] | None = None
        self.last_val: dict[str, Any] | None = None  # the latest validation: the test if no other follows
        self._idle_flushed = False  # the last epoch row went out by the watcher, no step since
        self._beats = 0  # passes and phase switches (the watcher's sign of activity)
        self.logs_epochs = False  # the script calls log_epoch after its epochs
        self.pending_logged = False  # ... and did for the pending row
        self._phase: tuple[Any, bool] | None = None  # (module reference, training) of the last switch
        self.watcher = IdleWatcher(self)
        self.params: dict[str, Any] = {}
        self.num_epochs: int | None = None

    # -- where tasks go -------------------------------------------------------------------
    def context(self) -> tuple[Dataflow, str]:
        """The dataflow and execution tag of a new task (see ``_shared.context``)."""
        df, tag = resolve(self.dataflow_tag, self.execution_tag, default_dataflow=DEFAULT_DATAFLOW)
        if df.tag not in self._saved:
            # record the spec in this pipeline's store even when an earlier one saw it
            df.saved_hash = None
            df.save()
            self._saved.add(df.tag)
        self.last_execution = tag
        return df, tag

    def _next_id(self, transformation: str, per_rank: bool = False) -> str:
        # Deterministic ids: every rank of a job computes the same ones for rank 0's tasks.
        n = self._counters[transformation] = self._counters.get(transformation, 0) + 1
        suffix = f"-rank{self.rank}" if per_rank and self.rank else ""
        return f"{transformation}-{n}{suffix}"

    def _task(self, transformation: str, task_id: str, deps: list[Producer]) -> Task:
        df, exec_tag = self.context()
        task = Task(task_id, df, exec_tag, transformation)
        for dep_id, dep_dt, dep_task in deps:
            task.dependencies.append(dep_task if dep_task is not None else (dep_id, dep_dt))
        return task

    # -- model and optimizer ------------------------------------------------------------------
    def on_optimizer(self, optimizer: Any) -> None:
        with self.lock:
            current = self._optimizer() if self._optimizer else None
            if self.train_task is not None and current is not None and current is not optimizer:
                self.end_training()  # a new optimizer: a new training begins
            self._optimizer = reference(optimizer)
            self._note_rates(optimizer, learning_rates(optimizer))
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
        if self._depth or module is not self._candidate or process.in_child:
            return
        self._candidate = None
        try:
            from torch.nn.modules.loss import _Loss

            if isinstance(module, _Loss) or next(module.parameters(), None) is None:
                return
            self._model = reference(module)
            self.disarm_model_hooks()
        except Exception as exc:
            report("torch model detection", exc)

    def model_in_eval(self) -> bool:
        m = self.model
        return m is not None and not m.training

    # -- training steps -------------------------------------------------------------------------
    def on_backward(self, loss: Any) -> None:
        cur = self._cur
        if cur.eval_calls and cur is self._orphan:  # training resumes after an evaluation
            with self.lock:
                self._resume_after_eval()
            cur = self._cur
        cur.add_loss(loss)  # no device sync
        if cur.steps == 1:  # first step of a pass: the previous epoch is complete
            with self.lock:
                try:
                    self._first_step(cur)
                except Exception as exc:
                    report("torch training begin", exc)

    def _first_step(self, cur: Pass) -> None:
        self.flush_pending()
        self._idle_flushed = False
        self.loaded = None  # a model loaded, then trained further (a resumed run): tested as trained
        if self.train_task is None:
            self.begin_training(loader_info=cur.info)
        if cur is self._orphan:
            cur.t0 = time.perf_counter()
        self._check_manual_lr()
        if self.optimizer is None:
            self.sniff_manual_rate()

    def on_eval_loss(self, name: str, reduction: Any, out: Any, inp: Any, tgt: Any) -> None:
        self._cur.add_eval(name, reduction, out, inp, tgt)

    # -- passes ---------------------------------------------------------------------------------
    def on_pass_start(self, loader: Any, iterator: Any, t0: float, grad: bool) -> None:
        with self.lock:
            info = self.loader_info(loader)
            p = Pass(loader, info, grad)
            p.t0 = t0
            # a pass of the same loader that never finished (break) is abandoned; a training pass
            # cut short (``if args.dry_run: break``, a batch limit) ended its epoch all the same
            left = [q for q in self._stack if q.loader is not None and q.loader() is loader]
            self._stack = [q for q in self._stack if q not in left][-7:]
            self.passes = {k: q for k, q in self.passes.items() if q in self._stack}
            self._end_left_passes(left)
            self.passes[id(iterator)] = p
            self._stack.append(p)
            self._cur = p
            self._beats += 1

    def _end_left_passes(self, left: list[Pass]) -> None:
        """Training passes left by ``break``: their epochs, whose evaluations came while they
        were left open (already in their rows), then the rate changes after them."""
        for q in left:
            if q.steps:
                self._end_train_pass(q, None)
                self.flush_pending()
                if self._adaptations and not any(s.steps for s in self._stack):
                    self._flush_adaptations()

    def on_pass_end(self, iterator: Any) -> None:
        with self.lock:
            p = self.passes.pop(id(iterator), None)
            if p is None:
                return
            if p in self._stack:
                self._stack.remove(p)
            self._cur = self._stack[-1] if self._stack else self._orphan
            self._beats += 1
            batches = getattr(iterator, "_num_yielded", None)
            if p.steps:
                self._end_train_pass(p, batches)
            elif p.eval_calls:
                self._end_eval_pass(p, batches)
            if self._adaptations and self.pending_epoch is None and not any(q.steps for q in self._stack):
                self._flush_adaptations()

    @staticmethod
    def _samples(p: Pass, batches: int | None) -> int | None:
        info = p.info
        if info is None or batches is None or info.batch_size is None:
            return None
        n = batches * info.batch_size
        return min(n, info.samples) if info.samples is not None else n

    def _end_train_pass(self, p: Pass, batches: int | None, idle: float = 0.0) -> None:
        if self.train_task is None:
            self.begin_training(loader_info=p.info)
        elapsed = time.perf_counter() - idle - p.t0  # idle: the watcher's wait after the last batch
        row: dict[str, Any] = {
            "timestamp": timestamp(),
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
        self.pending_logged = False
        self.watcher.start()

    def _end_eval_pass(self, p: Pass, batches: int | None) -> None:
        m = p.eval_metrics()
        samples = self._samples(p, batches)
        test = {
            "loss": m["loss"],
            "accuracy": m["accuracy"],
            "samples": samples,
            "batches": batches,
            "_producer": p.info.producer if p.info else None,
            "_given": p.info.given if p.info else None,
        }
        training = next((q for q in reversed(self._stack) if q.steps), None)
        if training is not None:  # a validation within the epoch: the epoch's row keeps the last
            training.extra.update(val_loss=m["loss"], val_accuracy=m["accuracy"], val_samples=samples)
            self.validated = True
            self.last_val = test
            return
        pe = self.pending_epoch
        if pe is not None and "val_samples" not in pe and (pe["epoch"] == 0 or self.validated):
            pe.update(val_loss=m["loss"], val_accuracy=m["accuracy"], val_samples=samples)
            self.validated = True
            self.last_val = test
            return
        if self._idle_flushed and not self.validated and self.loaded is None:
            # the first epoch's row went out before this late validation began: it is the
            # validation of that epoch all the same (its row keeps val_loss NULL)
            self._idle_flushed = False
            self.validated = True
            self.last_val = test
            return
        self.flush_pending()
        self.last_val = None
        self.pending_test = test

    # -- emitting ---------------------------------------------------------------------------------
    def flush_pending(self) -> None:
        """Emit the epoch row and the test waiting for more metrics."""
        self.check_saves()
        if self.hp_row is not None:
            self.emit_hyperparameters()
        row, self.pending_epoch = self.pending_epoch, None
        if row is not None and self.train_task is not None:
            self.train_task.add_dataset(DataSet("otrainmodel", [row]))
            self.train_task.save()
            training_seen("torch")
        test, self.pending_test = self.pending_test, None
        if test is not None:
            self.emit_test(test)
        if self._adaptations:
            self._flush_adaptations()

    def begin_training(
        self,
        loader_info: LoaderInfo | None = None,
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
            if loader_info is not None and loader_info.given:  # a dataset loaded whole: the training set
                given = {"trainset": loader_info.given["ref"], "num_samples": loader_info.given["num_samples"]}
                task.add_dataset(DataSet("otrainset", [given]))
            row = self._hyperparameters(loader_info, optimizer, model, num_epochs)
            row.update(extra or {})
            row.update(self.params)
            if optimizer is None and self.optimizer is None and "learning_rate" not in self.params:
                self.hp_row = row  # no optimizer: sent once the first manual update shows the rate
            else:
                task.add_dataset(DataSet("itrainmodel", [row]))
        task.begin()
        self.train_task = self.last_train_task = task
        self.last_val = None
        self.watcher.start()
        opt = optimizer or self.optimizer
        if opt is not None:
            self._note_rates(opt, learning_rates(opt))
        return task

    def _hyperparameters(
        self, info: LoaderInfo | None, optimizer: Any, model: Any, num_epochs: int | None
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
                row.update(optimizer_facts(opt))
            except Exception as exc:
                report("torch optimizer facts", exc)
        m = model or self.model
        if m is not None:
            try:
                row.update(model_facts(m))
            except Exception as exc:
                report("torch model facts", exc)
        elif opt is not None:
            try:
                row["num_parameters"] = sum(p.numel() for g in opt.param_groups for p in g["params"])
            except Exception as exc:
                report("torch parameter count", exc)
        if info is not None:
            row.update({k: v for k, v in info.facts().items() if k != "batch_size"})
        if row["num_epochs"] is None:
            row["num_epochs"] = guess_epochs()
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
        training_seen("torch")

    def emit_test(self, row: Mapping[str, Any]) -> None:
        """A ``testmodel`` task with one ``otestmodel`` row."""
        row = dict(row)
        producer = row.pop("_producer", None)
        given = row.pop("_given", None)
        deps: list[Producer] = []
        trained = self.train_task or self.last_train_task
        if self.loaded is None and trained is not None:  # the model this process trained
            deps.append((trained.id, "trainmodel", trained))
        if producer:
            deps.append(producer)
        task = self._task("testmodel", self._next_id("testmodel", per_rank=True), deps)
        if self.loaded is not None:  # the model file read back by torch.load
            task.add_dataset(DataSet("otrainedmodel", [dict(self.loaded)]))
        if given:  # a dataset loaded whole (no split): the test set
            task.add_dataset(DataSet("otestset", [{"testset": given["ref"], "num_samples": given["num_samples"]}]))
        task.begin()
        task.add_dataset(DataSet("otestmodel", [row]))
        task.end()
        training_seen("torch")

    # -- the end --------------------------------------------------------------------------------
    def end_training(self, error: BaseException | str | None = None) -> None:
        """Emit what is pending and end the ``trainmodel`` task. The last evaluation is the
        test when no evaluation followed the last validation."""
        with self.lock:
            left = [q for q in self._stack if q.steps]  # the last training pass, cut short by ``break``
            if left:
                self._stack = [q for q in self._stack if not q.steps]
                self.passes = {k: q for k, q in self.passes.items() if q in self._stack}
                self._cur = self._stack[-1] if self._stack else self._orphan
                if error is None and self.train_task is not None:  # a failed epoch is no epoch
                    self._end_left_passes(left)
            if not self._stack and self._orphan.eval_calls:
                self._close_orphan()  # the evaluation outside a DataLoader that ended the script
            self.flush_pending()
            self.check_saves(final=True)
            if self.last_val is not None and error is None:
                self.emit_test(self.last_val)
            self.last_val = None
            self.disarm_sniffer()
            task, self.train_task = self.train_task, None
            if task is not None:
                task.end(error=error)
            self.epoch = 0
            self._orphan = Pass()
            if not self._stack:
                self._cur = self._orphan

    def finish(self, error: BaseException | None = None) -> None:
        """End the training; with ``error``, also the execution (FAILED)."""
        self.end_training(error)
        if error is not None and self.last_execution is not None:
            for ex in tracing.open_executions():
                if ex.tag == self.last_execution:
                    ex.end(error=error)


__all__ = ["DEFAULT_DATAFLOW", "Recorder"]
