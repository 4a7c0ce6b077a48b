"""What cannot be inferred, said by the script: epoch and test metrics, hyperparameters,
and the end of a training."""

from __future__ import annotations

from typing import Any

from .._shared.guard import guarded
from .._shared.rows import clean_metrics
from .state import get_recorder


def log_epoch(epoch: int | None = None, **metrics: Any) -> None:
    """Add metrics to the epoch row in progress, or record an epoch row yourself.

    After (or during) an automatically detected epoch the metrics join its row. Otherwise
    (no instrumentation, or a loop without a DataLoader) one ``otrainmodel`` row is recorded
    now, with ``loss`` defaulting to the mean of the losses backpropagated since the last
    epoch.
    """
    rec = get_recorder()
    guarded("log_epoch", lambda: rec.log_epoch(epoch, clean_metrics(metrics)))


def log_test(**metrics: Any) -> None:
    """Add metrics to the test just detected, or record a ``testmodel`` task (``otestmodel``)."""
    rec = get_recorder()
    guarded("log_test", lambda: rec.log_test(clean_metrics(metrics)))


def log_params(**values: Any) -> None:
    """Hyperparameters for ``itrainmodel`` (``num_epochs=10``...): merged into the next
    training's row, or recorded as one more ``itrainmodel`` element of a running training."""
    rec = get_recorder()
    guarded("log_params", lambda: rec.log_params(clean_metrics(values)))


def finish(error: BaseException | None = None) -> None:
    """Record what is pending and end the training task (FAILED with ``error``)."""
    guarded("finish", get_recorder().finish, error)


__all__ = ["finish", "log_epoch", "log_params", "log_test"]
