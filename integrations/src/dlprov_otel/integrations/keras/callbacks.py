"""Keras callbacks: :class:`DLProvCallback` (records a training by itself, or the part of
an instrumented ``fit`` that runs inside Keras), and the probes the instrumented ``fit``
puts between your callbacks. Keras is imported when a class is first needed."""

from __future__ import annotations

from typing import Any

from .._shared.guard import guarded
from .runs import EvalRun, TrainRun, state

_PUBLIC_MODULE = __name__.rpartition(".")[0]  # dlprov_otel.integrations.keras

_classes: dict[str, type] = {}


def callback_classes() -> dict[str, type]:
    if _classes:
        return _classes
    import keras

    class DLProvCallback(keras.callbacks.Callback):
        """Records the training it is given to as a ``trainmodel`` task (add it last).

        Without the instrumentor it records hyperparameters, one ``otrainmodel`` row per
        epoch and learning-rate adaptations (its ``trigger`` is the schedule class or
        ``callback``); given to ``evaluate``, a ``testmodel`` task. With the instrumentor on,
        ``fit`` records everything already and this callback is left out.
        """

        def __init__(self, dataflow: str | None = None, execution: str | None = None) -> None:
            super().__init__()
            self.dataflow = dataflow
            self.execution = execution
            self._run: TrainRun | None = None
            self._owned = False  # the callback started the run itself (no instrumentor)
            self._checks_rate = False
            self._eval: EvalRun | None = None
            self._training = False

        def _attach(self, run: TrainRun, checks_rate: bool) -> None:
            self._run, self._owned, self._checks_rate = run, False, checks_rate

        def on_train_begin(self, logs: Any = None) -> None:
            self._training = True
            if self._run is None:
                self._run = guarded(
                    "fit begin", TrainRun.standalone, self.model, self.params, self.dataflow, self.execution
                )
                self._owned = self._checks_rate = self._run is not None
            if self._run is not None:
                guarded("itrainmodel", self._run.record_inputs)

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            run = self._run
            if run is None:
                return
            if self._checks_rate:
                run.epoch_started(epoch)
                guarded("learning rate", run.check_rate, run.begin_label(epoch), run.schedule or "callback")
            guarded("learning rate", run.snapshot_rate)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            run = self._run
            if run is None:
                return
            guarded("otrainmodel", run.epoch_ended, epoch, logs)
            if self._checks_rate:
                guarded("learning rate", run.check_rate, epoch, run.schedule or "callback")

        def on_train_end(self, logs: Any = None) -> None:
            self._training = False
            if self._owned and self._run is not None:
                guarded("fit end", self._run.finish, None)
            if self._owned or self._run is None or self._run.ended:
                self._run, self._owned = None, False

        def on_test_begin(self, logs: Any = None) -> None:
            if not self._training and not state.enabled:  # a hand-made evaluate
                self._eval = guarded("evaluate", EvalRun, self.model, None, None, self.dataflow, self.execution)

        def on_test_end(self, logs: Any = None) -> None:
            if self._eval is not None:
                self._eval.logs = dict(logs or {})
                guarded("evaluate end", self._eval.finish, None)
                self._eval = None

    class RateProbe(keras.callbacks.Callback):
        """Checks the learning rate after the callback before it (which then is the trigger)."""

        def __init__(self, run: TrainRun, trigger: str, first: bool = False) -> None:
            super().__init__()
            self.run, self.trigger, self.first = run, trigger, first

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            if self.first:
                self.run.epoch_started(epoch)
            guarded("learning rate", self.run.check_rate, self.run.begin_label(epoch), self.trigger)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            # the epoch's row (recorded by the last callback) goes first, then the change
            guarded("learning rate", self.run.check_rate, epoch, self.trigger, defer=True)

    class EvalProbe(keras.callbacks.Callback):
        """Keeps the metrics ``evaluate`` returns (its final logs)."""

        def __init__(self, run: EvalRun) -> None:
            super().__init__()
            self.run = run

        def on_test_end(self, logs: Any = None) -> None:
            self.run.logs = dict(logs or {})

    DLProvCallback.__module__ = _PUBLIC_MODULE
    _classes.update(DLProvCallback=DLProvCallback, RateProbe=RateProbe, EvalProbe=EvalProbe)
    return _classes


__all__ = ["callback_classes"]
