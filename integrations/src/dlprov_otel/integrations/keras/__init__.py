"""Zero-code provenance of Keras training (Keras 3, also as ``tf.keras``).

``KerasInstrumentor().instrument()``, or running a plain script with
``opentelemetry-instrument python train.py``, wraps ``Model.fit``, ``Model.evaluate``,
``Model.save`` and ``Model.save_weights``. What they do becomes tasks of the predefined
deep-learning dataflow (the open ``dlprov_otel.execution(...)``, else
``instrument(dataflow=..., execution=...)``, else ``DLPROV_DATAFLOW`` or ``keras``):

=========================  ===================================================================
``fit``                    a ``trainmodel`` task. ``itrainmodel``: optimizer_name,
                           learning_rate, num_epochs, num_layers, batch_size, plus
                           optimizer_config (JSON), loss_function, metrics (JSON),
                           param_count, trainable_params, model_architecture (JSON),
                           model_name, keras_version, backend and the fit arguments.
                           ``otrainmodel``: one row per epoch with timestamp, elapsed_time
                           (seconds), loss, accuracy, val_loss, val_accuracy, epoch (Keras's,
                           from 0), learning_rate and every other metric Keras logged (names
                           sanitized). ``otrainset``: the data it was given (shape, dtype,
                           samples, sha256), unless a split task of this run produced them
``validation_split``       a ``splitdata`` task before the training: ``isplitconfig`` (ratio =
                           validation_split, train/validation sample counts), ``otrainset``
                           rows for both parts (``subset`` train / validation)
learning-rate change       an ``adaptation`` task depending on the training task:
                           ``iadaptation`` (adaptation_id, trigger, epoch) and ``oadaptation``
                           (adaptation_id, old_learning_rate, new_learning_rate, epoch,
                           trigger, timestamp). ``epoch`` is the epoch whose end triggered
                           the change (the epoch in progress for a per-step schedule; a rate
                           set before the first epoch is no adaptation), recorded after that
                           epoch's row; ``trigger`` the callback class that changed it
                           (``LearningRateScheduler``, ``ReduceLROnPlateau``, yours), the
                           ``LearningRateSchedule`` class, or ``user``. Rates are compared at
                           epoch boundaries
``EarlyStopping``          stopped_epoch, best_epoch, restore_best_weights and
                           early_stopping_monitor on the ``otrainmodel`` row of the epoch
                           where training stopped
``save``/``save_weights``  an ``otrainedmodel`` row of the model's training task: model_name,
                           model_dir (the path), format, size_bytes, sha256, saved
                           (model/weights), epoch: the epoch whose weights it holds (a
                           ``ModelCheckpoint`` at the end of epoch e: e; after fit: the last
                           epoch, or EarlyStopping's restored best)
``load_model``,            the loaded file (path, size, sha256, the epoch of its weights) is the
``load_weights``           ``otrainedmodel`` input of the next ``evaluate``; a file saved by a
                           training of this run makes the evaluation depend on that training,
                           and in PROV it uses that training's model entity
``evaluate``               a ``testmodel`` task depending on the training task: ``otestset``
                           rows for its data, ``otestmodel`` with every returned metric
=========================  ===================================================================

A fit that raises ends its task FAILED with the error, and the exception reaches the caller
unchanged. Failures of the provenance itself are logged once and never stop the training.
Per epoch the cost is a learning-rate read per callback and one span handed to the background
exporter.
``uninstrument()`` puts the original Keras functions back.

A custom training loop (``tf.GradientTape`` over ``tf.data``, no ``fit``) is recorded too,
eager or in ``tf.function``: see :mod:`.loops`.

``DLProvCallback`` records a training without the instrumentor: add it last to
``callbacks``. ``load_data``, ``split_data`` and ``transform`` mark your own data steps.

The package, by job: :mod:`.facts` (what is read from Keras objects), :mod:`.runs` (run
state), :mod:`.callbacks`, :mod:`.patches`, :mod:`.loading` (saves and loads by digest),
:mod:`.loops` + :mod:`.tfpatches` (custom loops) and :mod:`.instrumentor`.
"""

from typing import Any

from ..lineage import load_data, split_data, transform
from .callbacks import callback_classes
from .instrumentor import KerasInstrumentor


def __getattr__(name: str) -> Any:
    # DLProvCallback subclasses keras.callbacks.Callback: built on first use, so that
    # importing this package never imports keras.
    if name == "DLProvCallback":
        cls = callback_classes()["DLProvCallback"]
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DLProvCallback", "KerasInstrumentor", "load_data", "split_data", "transform"]
