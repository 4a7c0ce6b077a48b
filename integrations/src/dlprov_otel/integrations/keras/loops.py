"""TensorFlow custom training loops: a ``tf.GradientTape`` over ``tf.data``, no ``fit``.

What the patches (:mod:`.tfpatches`) tell the :class:`LoopRecorder`, and what it records:

- a training step: ``GradientTape.gradient`` (its target is the loss; kept as a tensor, read
  once per epoch) and ``Optimizer.apply_gradients`` (the optimizer, and through its variables
  the model). Inside a ``tf.function`` the Python code runs only while tracing: there the loss
  is added to variables by ops put into the traced graph, read once per epoch;
- an evaluation: a ``keras.losses.Loss`` called outside any ``GradientTape``;
- an epoch: a ``tf.data`` dataset iterated to exhaustion while steps were taken; a pass with
  evaluation losses only is an evaluation. It fills ``val_loss`` of the epoch before it, or is
  a test (``otestmodel``); when no test followed the training, the last evaluation is the test;
- the learning rate: read at each pass start and epoch end; a change is an adaptation
  labelled with the epoch whose end triggered it (the epoch in progress for a schedule).

Everything is recorded into the Keras dataflow, as ``fit`` is: a ``trainmodel`` task
(``itrainmodel`` from the optimizer and the model), ``otrainmodel`` per epoch, ``adaptation``
tasks and a ``testmodel`` task. The training ends when another optimizer starts one, at
``uninstrument()`` or at exit. Nothing is recorded while Keras's own ``fit``/``evaluate`` run.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

from dlprov_otel import tracing
from dlprov_otel.api import DataSet, Task

from .. import lineage
from .._shared.guard import report
from .._shared.rows import timestamp
from .._shared.silence import training_seen
from ..lineage.tasks import record_adaptation
from .facts import DECLARED_EPOCH, hyperparameters, metric_row, optional, pick_accuracy, to_float
from .runs import context, last_train, weights_epoch

FRAMEWORK = "tensorflow"
_FOLD = 1024  # eager losses kept per pass before they are summed into one tensor


def _eagerly() -> bool:
    """TensorFlow's ``executing_eagerly`` (looked up once: this runs every step)."""
    global _eagerly
    from tensorflow.python.eager.context import executing_eagerly

    _eagerly = executing_eagerly
    return executing_eagerly()


def _ref(obj: Any) -> Callable[[], Any]:
    try:
        return weakref.ref(obj)
    except TypeError:
        return lambda: obj


def _none() -> Any:
    return None


class _GraphSums:
    """Loss sums of traced functions: a variable ([sum, count] per kind) that one op of the
    traced graph adds to per step, read once per pass."""

    def __init__(self) -> None:
        self.vars: dict[str, Any] = {}
        self.read: dict[str, tuple[float, float]] = {}

    def add(self, which: str, value: Any) -> None:
        import tensorflow as tf

        if tf.distribute.has_strategy():
            return  # per-replica values: not summed here
        var = self.vars.get(which)
        if var is None:
            with tf.init_scope():  # created eagerly, outside the function being traced
                var = self.vars[which] = tf.Variable([0.0, 0.0], dtype=tf.float64, trainable=False)
            self.read[which] = (0.0, 0.0)
        if value.shape.rank != 0:
            value = tf.reduce_mean(value)
        var.assign_add(tf.stack([tf.cast(value, tf.float64), tf.constant(1.0, tf.float64)]))

    def take(self, which: str) -> tuple[int, float]:
        """Steps and loss sum added since the last take (one read)."""
        var = self.vars.get(which)
        if var is None:
            return 0, 0.0
        import tensorflow as tf

        with tf.init_scope():  # eager even while a tf.function is traced (a new optimizer there)
            total, n = (float(v) for v in var.numpy())
        last_total, last_n = self.read[which]
        self.read[which] = (total, n)
        return round(n - last_n), total - last_total


class LoopRecorder:
    """The custom training loops of one process (see the module's text)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.paused = 0  # > 0 while Keras's own fit/evaluate run (recorded by their patches)
        self.train_losses: list[Any] = []  # eager step losses of the pass in progress
        self.eval_losses: list[Any] = []
        self.folds: dict[str, tuple[Any, int]] = {}  # losses summed on the device (a long pass)
        self.graph = _GraphSums()
        self._opt: Callable[[], Any] = _none  # the optimizer whose rate and steps are recorded
        self.others: list[Callable[[], Any]] = []  # optimizers stepping beside it (a GAN's)
        self._model: Callable[[], Any] = _none
        self.models: list[Callable[[], Any]] = []  # models created, oldest first
        self.metrics: list[tuple[Callable[[], Any], tuple[float, ...]]] = []  # keras metrics, their state
        self.loss_name: str | None = None
        self.task: Task | None = None
        self.epoch = 0  # epochs completed in the current training
        self.iterations = 0  # optimizer.iterations at the last epoch end
        self.t0 = time.perf_counter()  # start of the epoch in progress
        self.starts: dict[int, tuple[float, Callable[[], Any], float | None]] = {}  # iterator -> start
        self.train_data: Callable[[], Any] = _none  # the dataset of the last training pass
        self.pending_epoch: dict[str, Any] | None = None
        self.deferred: list[tuple[float, float, int, str]] = []  # adaptations after the epoch row
        self.last_eval: dict[str, Any] | None = None
        self.tested = False
        self.rate: float | None = None
        self.epoch_rate: float | None = None
        self.adaptations = 0
        self.described: set[str] = set()  # subsets whose dataset the training recorded

    # -- the hot path (eager: every step) -------------------------------------------------------
    def on_gradient(self, target: Any) -> None:
        if self.paused or not hasattr(target, "dtype"):
            return
        if _eagerly():
            losses = self.train_losses
            losses.append(target)
            n = len(losses)
            if n == 1:
                self._first_step()
            elif n >= _FOLD:
                self._fold(losses, "train")
        else:
            with self.lock:
                self.graph.add("train", target)
                self._first_step()

    def on_eval_loss(self, value: Any) -> None:
        if _eagerly():
            self.eval_losses.append(value)
            if len(self.eval_losses) >= _FOLD:
                self._fold(self.eval_losses, "eval")
        else:
            with self.lock:
                self.graph.add("eval", value)

    def knows(self, optimizer: Any) -> bool:
        if self._opt() is optimizer:
            return True
        return any(r() is optimizer for r in self.others)

    # -- what the first step tells ----------------------------------------------------------------
    def _first_step(self) -> None:
        with self.lock:
            try:
                if self.pending_epoch is not None:
                    self.flush()  # no evaluation came between two training passes
                if self.task is None and self._opt() is not None:
                    self.begin()
            except Exception as exc:
                report("tensorflow training step", exc)

    def on_optimizer(self, optimizer: Any, grads_and_vars: list[Any]) -> None:
        with self.lock:
            # the training's optimizer may be gone: the script made a new one in its place
            # (``optimizer = keras.optimizers.Adam(...)`` again, as the Keras guide does)
            replaced = self._opt is not _none and self._opt() is None
            if self.task is not None and (self._opt() is not None or replaced):
                if not replaced and (not self.epoch or self._iterations() != self.iterations):
                    # stepping in the same pass as the first one (a GAN's two optimizers)
                    self.others = [*[r for r in self.others if r() is not None][-7:], _ref(optimizer)]
                    return
                # a new optimizer once a training's epochs are over: a new training, which
                # this step (its loss already taken) belongs to
                carried = list(self.train_losses)
                self.train_losses.clear()
                self.finish()
                self.train_losses.extend(carried)
            self._opt, self.others = _ref(optimizer), []
            variables = [pair[1] for pair in grads_and_vars if isinstance(pair, tuple | list) and len(pair) == 2]
            model = self._find_model(variables)
            self._model = _ref(model) if model is not None else _none
            self.iterations = self._iterations() or 0
            self.rate = self._rate()
            self.begin()

    def on_metric(self, metric: Any) -> None:
        with self.lock:
            self.metrics = [(r, v) for r, v in self.metrics if r() is not None][-63:]
            self.metrics.append((_ref(metric), ()))

    def _updated_metrics(self) -> dict[str, float]:
        """The results of the Keras metrics updated since the last pass ended (one read each)."""
        out: dict[str, float] = {}
        kept = []
        for r, before in self.metrics:
            m = r()
            if m is None:
                continue
            state = optional(lambda m=m: _eager(lambda: tuple(float(to_float(v)) for v in m.variables)), ())
            if state and state != before and any(state):
                value = optional(lambda m=m: _eager(lambda: to_float(m.result())))
                if value is not None:
                    out[str(m.name)] = value
            kept.append((r, state))
        self.metrics = kept
        return out

    def on_model(self, model: Any) -> None:
        self.models = [m for m in self.models if m() is not None][-63:]
        self.models.append(_ref(model))

    def _find_model(self, variables: list[Any]) -> Any:
        if not variables:
            return None
        first = variables[0]
        best, size = None, -1
        for r in self.models:
            m = r()
            weights = optional(lambda m=m: list(m.trainable_weights), []) if m is not None else []
            if any(w is first for w in weights) and len(weights) >= size:
                best, size = m, len(weights)
        return best

    # -- passes over tf.data -------------------------------------------------------------------
    def on_pass_start(self, dataset: Any, iterator: Any) -> None:
        if self.paused:
            return
        with self.lock:
            if self.pending_epoch is not None and self.train_data() is dataset:
                self.flush()  # the next training pass: no evaluation came
            rate = self._check_rate(self.epoch - 1, None) if self.task is not None else None
            if len(self.starts) > 16:
                self.starts.clear()  # passes abandoned (break)
            self.starts[id(iterator)] = (time.perf_counter(), _ref(dataset), rate)

    def on_exhausted(self, iterator: Any) -> None:
        if self.paused:
            return
        with self.lock:
            start = self.starts.pop(id(iterator), None)
            steps, loss = self._take(self.train_losses, "train")
            metrics = self._updated_metrics() if self.metrics else {}
            if steps:
                self._end_train_pass(steps, loss, start, metrics)
                return
            n, eval_loss = self._take(self.eval_losses, "eval")
            if n or (metrics and self.task is not None):
                self._end_eval_pass(n, eval_loss, metrics)
                self._describe(start, "validation")

    def _fold(self, losses: list[Any], which: str) -> None:
        """Sum the kept losses on the device (no read), so a pass that never ends keeps one tensor."""
        import tensorflow as tf

        s = tf.add_n([tf.cast(tf.reduce_mean(v), tf.float64) for v in losses])
        prev, k = self.folds.get(which, (None, 0))
        self.folds[which] = (s if prev is None else prev + s, k + len(losses))
        losses.clear()

    def _take(self, losses: list[Any], which: str) -> tuple[int, float | None]:
        n, total = self.graph.take(which)
        if losses:
            self._fold(losses, which)
        folded, k = self.folds.pop(which, (None, 0))
        if folded is not None:
            total += float(folded.numpy())
            n += k
        return n, (total / n if n else None)

    def _end_train_pass(self, steps: int, loss: float | None, start: Any, metrics: dict[str, float]) -> None:
        if self.task is None:
            self.begin()
        now = time.perf_counter()
        t0 = start[0] if start is not None else self.t0
        iterations = self._iterations()
        row: dict[str, Any] = {
            "timestamp": timestamp(),
            "elapsed_time": now - t0,
            "loss": loss,
            "accuracy": None,
            "val_loss": None,
            "val_accuracy": None,
            "epoch": self.epoch,
            "steps": steps if iterations is None else max(steps, iterations - self.iterations),
            "learning_rate": start[2] if start is not None and start[2] is not None else self.rate,
        }
        row["accuracy"] = pick_accuracy(metrics, "")
        row.update(metric_row(metrics, DECLARED_EPOCH, ()))
        self.iterations = iterations or 0
        self.train_data = start[1] if start is not None else _none
        self._describe(start, "train")
        self.flush()
        self.pending_epoch = row
        self._check_rate(self.epoch, self.deferred)  # a schedule changed it during the epoch
        self.epoch += 1
        self.t0 = now
        training_seen(FRAMEWORK)

    def _describe(self, start: Any, subset: str) -> None:
        """The dataset of a training's first pass of each kind, as its ``otrainset`` input."""
        task = self.task
        if start is None or task is None or subset in self.described:
            return
        self.described.add(subset)
        rows = lineage.describe(start[1](), f"{subset}_dataset")
        inputs = [dict(r, subset=subset) for r in rows if not lineage.was_output(task.exec_tag, "otrainset", r)]
        lineage.emit(task, "otrainset", inputs, "trainset")

    def _end_eval_pass(self, n: int, loss: float | None, found: dict[str, float]) -> None:
        metrics: dict[str, Any] = {"loss": loss, "accuracy": pick_accuracy(found, "")}
        metrics.update(metric_row(found, ("loss", "accuracy"), ()))
        if n:
            metrics["batches"] = n
        pe = self.pending_epoch
        if pe is not None and pe.get("val_loss") is None and pe.get("val_accuracy") is None:
            pe["val_loss"], pe["val_accuracy"] = loss, metrics["accuracy"]
            pe.update(metric_row({"val_" + k: v for k, v in found.items()}, DECLARED_EPOCH, ()))
            self.last_eval = metrics
            self.flush()
            return
        self.flush()
        self.last_eval = None
        self.tested = True
        self.emit_test(metrics)

    # -- learning rate ---------------------------------------------------------------------------
    def _rate(self) -> float | None:
        opt = self._opt()
        return optional(lambda: _eager(lambda: to_float(opt.learning_rate))) if opt is not None else None

    def _iterations(self) -> int | None:
        opt = self._opt()
        return optional(lambda: _eager(lambda: int(to_float(opt.iterations)))) if opt is not None else None

    def _check_rate(self, label: int, deferred: list[Any] | None) -> float | None:
        """The rate now; a change since the last check is an adaptation labelled ``label``."""
        new = self._rate()
        old, self.rate = self.rate, new
        if old is None or new is None or new == old or label < 0 or self.task is None:
            return new
        trigger = optional(self._trigger) or "user"
        if deferred is not None or self.pending_epoch is not None:
            self.deferred.append((old, new, label, trigger))
        else:
            self._adaptation(old, new, label, trigger)
        return new

    def _trigger(self) -> str | None:
        from keras.optimizers.schedules import LearningRateSchedule

        lr = getattr(self._opt(), "_learning_rate", None)
        return type(lr).__name__ if isinstance(lr, LearningRateSchedule) else None

    def _adaptation(self, old: float, new: float, epoch: int, trigger: str) -> None:
        task = self.task
        if task is None:
            return
        self.adaptations += 1
        record_adaptation(task, self.adaptations, old, new, epoch, trigger)

    # -- tasks ---------------------------------------------------------------------------------
    def begin(self) -> None:
        """Start the ``trainmodel`` task with its ``itrainmodel`` row."""
        if self.task is not None:
            return
        df, exec_tag = context()
        last = lineage.last_data_task(exec_tag)
        task = lineage.new_task(df, exec_tag, "trainmodel", [last] if last else [])
        model, opt = self._model(), self._opt()
        if model is not None:
            row = hyperparameters(model, self.rate, None, None)
        else:
            row = {"optimizer_name": type(opt).__name__.lower() if opt is not None else None}
            row.update(learning_rate=self.rate, num_epochs=None, num_layers=None)
        if opt is not None and getattr(model, "optimizer", None) is not opt:
            row["optimizer_name"] = type(opt).__name__.lower()
            row["optimizer_config"] = optional(lambda: _json(opt.get_config()))
        row["training_loop"] = "GradientTape"
        if row.get("num_epochs") is None:
            row["num_epochs"] = optional(_guess_epochs)  # `epochs = 3` or `args.epochs` in the script
        if self.loss_name:
            row["loss_function"] = self.loss_name
        task.add_dataset(DataSet("itrainmodel", [row]))
        task.begin()
        self.task = task
        self.epoch, self.t0 = 0, time.perf_counter()
        self.tested, self.last_eval = False, None
        self.described: set[str] = set()
        if model is not None:
            last_train[model] = task
        training_seen(FRAMEWORK)

    def flush(self) -> None:
        """Emit the epoch row waiting for its evaluation, then the adaptations after it."""
        row, self.pending_epoch = self.pending_epoch, None
        if row is not None and self.task is not None:
            self.task.add_dataset(DataSet("otrainmodel", [row]))
            self.task.save()
        deferred, self.deferred = self.deferred, []
        for args in deferred:
            self._adaptation(*args)

    def emit_test(self, metrics: dict[str, Any]) -> None:
        df, exec_tag = context()
        deps = [self.task] if self.task is not None else []
        task = lineage.new_task(df, exec_tag, "testmodel", deps)
        task.begin()
        task.add_dataset(DataSet("otestmodel", [dict(metrics)]))
        task.end()

    def checkpoint_epoch(self, model: Any) -> int | None:
        """The epoch whose weights ``model`` holds, when a loop trains it (None: none ended)."""
        if self.task is None or self._model() is not model:
            return None
        return self.epoch - 1 if self.epoch else None

    def finish(self, error: BaseException | None = None) -> None:
        """Record what is pending and end the training."""
        with self.lock:
            for losses, which in ((self.train_losses, "train"), (self.eval_losses, "eval")):
                steps, loss = self._take(losses, which)
                if steps and which == "train":
                    self._end_train_pass(steps, loss, None, {})  # a pass that never ran out
            self.flush()
            if self.task is not None and not self.tested and self.last_eval is not None:
                self.emit_test(self.last_eval)  # the last evaluation is the test
            task, self.task = self.task, None
            model = self._model()
            if model is not None and self.epoch:
                weights_epoch[model] = self.epoch - 1
            if task is not None:
                task.end(error=error)
                if error is not None:  # an uncaught exception: the execution failed too
                    for ex in tracing.open_executions():
                        if ex.tag == task.exec_tag:
                            ex.end(error=error)
            self.last_eval, self.tested, self.epoch = None, False, 0


def _eager(read: Callable[[], Any]) -> Any:
    """A value read eagerly, also while a ``tf.function`` is being traced."""
    import tensorflow as tf

    with tf.init_scope():
        return read()


def _guess_epochs() -> int | None:
    from ..torch.facts import guess_epochs  # reads the script's frames; imports no framework

    return guess_epochs()


def _json(value: Any) -> str:
    import json

    return json.dumps(value, default=str, sort_keys=True)


class _Active:
    recorder: LoopRecorder | None = None


active = _Active()

__all__ = ["FRAMEWORK", "LoopRecorder", "active"]
