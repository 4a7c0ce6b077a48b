"""Zero-code provenance of HuggingFace ``transformers.Trainer`` runs.

``TransformersInstrumentor().instrument()``, or ``opentelemetry-instrument python train.py``,
adds :class:`DLProvTrainerCallback` to every ``Trainer`` and records, into the predefined
deep-learning dataflow (``DLPROV_DATAFLOW``, else ``transformers``), in the vocabulary of the
Keras and PyTorch integrations:

===================  =========================================================================
``train``            a ``trainmodel`` task. ``itrainmodel``: optimizer_name, learning_rate,
                     num_epochs, num_layers, batch_size from ``TrainingArguments`` and the
                     model, plus weight_decay, warmup, lr_scheduler_type, gradient accumulation,
                     seed, model_name, model_type, param_count. ``otrainmodel``: one row per
                     epoch (epoch from 0, loss = mean of the steps' losses, read once per
                     epoch, the Trainer's own logged loss and grad_norm, learning_rate the
                     epoch began with, steps) with the evaluation that follows it as ``val_*``
                     (``eval_loss`` → ``val_loss``)
learning rate        one ``adaptation`` per epoch whose rate changed (a per-step schedule is
                     not one row per step), labelled with that epoch, after its row
``save_model``       ``otrainedmodel``: the directory, its size and sha256 (and the sha256 of
                     its safetensors file); checkpoints during training carry the epoch whose
                     weights they hold
``evaluate``         after the training: a ``testmodel`` task with ``otestmodel`` (the
``predict``          metrics without their ``eval_``/``test_`` prefix)
===================  =========================================================================

The PyTorch integration's loop capture stands aside while a Trainer trains or evaluates, so
nothing is recorded twice.
"""

from typing import Any

from .instrumentor import TransformersInstrumentor


def __getattr__(name: str) -> Any:
    # a TrainerCallback subclass: built on first use, so importing this never imports transformers
    if name == "DLProvTrainerCallback":
        from .patches import callback_class

        cls = callback_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DLProvTrainerCallback", "TransformersInstrumentor"]
