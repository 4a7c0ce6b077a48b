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
- one ``otrainmodel`` row per epoch, found by the conventions in this order: a full pass
  over a DataLoader during which ``backward()`` ran; else, for loops that slice tensors
  themselves (a ``get_batch`` helper), the model switched between ``train()`` and ``eval()``
  (or another model, one just loaded) or training steps resuming after evaluation losses
  (:mod:`.phases`). The row holds elapsed time, the mean of the backpropagated losses (on an
  accelerator kept as detached tensors, summed on the device and read with one ``.item()``
  per epoch, so no extra device sync per step; on the CPU, where ``.item()`` is a plain
  read, summed as floats), samples, batches, learning rate; and ``val_loss``/
  ``val_accuracy`` of the evaluation that follows (loss modules or ``torch.nn.functional``
  losses under ``torch.no_grad()`` or ``model.eval()``, summed per sample so
  ``reduction='sum'`` gives the same mean; accuracy for CrossEntropy/NLL/BCE losses, else
  NULL; a validation run inside the training pass, every N steps, gives the last one). The
  row waits for that evaluation and :func:`log_epoch`, and goes out within about 0.6 s of
  the epoch's last batch (:mod:`.idle`), or at the next epoch's first step.
- the last evaluation is the ``testmodel`` task (``otestmodel``): an evaluation after the
  last validation, else that last validation itself (at the end of the training).
- no optimizer: a manual SGD update (``p.data.add_(p.grad, alpha=-lr)``, ``p -= lr *
  p.grad``) gives ``optimizer_name`` ``manual_sgd``, the learning rate and its changes
  (:mod:`.manual`).
- ``adaptation``: each ``lr_scheduler`` step (``LRScheduler``, ``ReduceLROnPlateau``) or
  manual param-group change that alters a learning rate: ``oadaptation`` with the old and
  new rate, epoch and trigger (the scheduler class, or ``param_groups``), labelled with the
  epoch whose end triggered it and recorded after that epoch's row. Changes within a
  training pass (per-step schedules) are grouped into one task per pass.
- ``otrainedmodel``: each ``torch.save`` of a module or a (state) dict to a path or an open
  file that has a name (hashed once closed): path, size, sha256, and the epoch whose
  weights it holds. ``torch.load`` makes that file the input of the next test (:mod:`.models`).
- a training that raises (uncaught) ends its task and the execution FAILED with the error.

In a multi-process job (torchrun) all ranks share one execution (see
:mod:`dlprov_otel.ranks`); lineage, hyperparameters and adaptations are recorded by rank 0
only, epochs, tests and saved models by every rank (``rank`` column). Nothing is recorded
in forked processes (DataLoader workers).

What cannot be inferred: :func:`log_epoch`, :func:`log_test`, :func:`log_params`,
:func:`finish`; and :class:`DLProvLightningCallback` for ``lightning.pytorch`` (added to
every ``Trainer`` automatically while instrumented). Provenance errors are logged once and
never reach the training; ``uninstrument()`` restores every patched attribute.

A process that imported torch and in which no epoch or test was recognised says so once at
exit, with the explicit calls to add (``_shared.silence``).

The package, by job: :mod:`.facts` (what is read from PyTorch objects), :mod:`.passes`,
:mod:`.data`, :mod:`.rates`, :mod:`.manual`, :mod:`.models`, :mod:`.phases`,
:mod:`.explicit`, :mod:`.idle` and :mod:`.recorder` (run state), :mod:`.state` (the active
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
