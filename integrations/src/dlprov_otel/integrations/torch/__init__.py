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

The package, by job: :mod:`.facts` (what is read from PyTorch objects), :mod:`.passes`,
:mod:`.data`, :mod:`.rates` and :mod:`.recorder` (run state), :mod:`.state` (the active
recorder), :mod:`.api` (the explicit calls), :mod:`.patches` and :mod:`.instrumentor`.
"""

from typing import Any

from .api import finish, log_epoch, log_params, log_test
from .instrumentor import TorchInstrumentor
from .recorder import Recorder
from .state import get_recorder


def __getattr__(name: str) -> Any:
    # lightning is imported only when its callback is asked for
    if name == "DLProvLightningCallback":
        from ..lightning_callback import DLProvLightningCallback

        return DLProvLightningCallback
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
