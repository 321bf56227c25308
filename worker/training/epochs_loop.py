"""A trial's epochs: Keras's own train and test steps, in a loop leaner than ``Model.fit``.

Measured on the digits 2x64 network (one TensorFlow thread, bench/trial_fixed_cost.py): under
``fit`` a trial's first epoch takes ~0.6 s against ~0.05 s for the next ones, whatever its
length. Here each epoch is one traced function whose loop over the batches runs in the graph
(a ``tf.while_loop`` over the dataset's iterator), so a step costs no Python call: the steady
epoch on digits 2x64 takes ~0.024 s against ~0.063 s with a Python loop calling a traced step,
for ~0.05 s more tracing in the first one. The optimizer's and the compiled metrics' variables
are built before the trace; the steps themselves are Keras's (``train_step``, ``test_step``:
the same loss, regularization, gradient clipping, metrics and logs), and the callbacks see what
``fit`` shows them: ``on_train_begin``, ``on_epoch_begin``, ``on_epoch_end(epoch, logs)`` with
``loss``, the metrics and their ``val_`` twins, and ``on_train_end``; ``model.stop_training``
ends the loop. No per-batch hooks: nothing of the worker's needs one.
"""

from __future__ import annotations

import logging
from typing import Any

import keras
import numpy as np
import tensorflow as tf


class _NewModelsRetrace(logging.Filter):
    """Drops TensorFlow's warning that recent calls "triggered tf.function retracing": each
    trial's model has steps of its own, traced once, by design."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("triggered tf.function retracing" in message and "_epoch_function" in message)


logging.getLogger("tensorflow").addFilter(_NewModelsRetrace())


def _floats(results: dict[str, Any]) -> dict[str, float]:
    """The scalar results (a per-class metric's vector is not an epoch's log value)."""
    return {name: float(value) for name, value in results.items() if np.ndim(value) == 0}


def _build(model: keras.Model, batch: tuple[Any, Any]) -> None:
    """Create the layers', optimizer's and compiled metrics' variables now, not inside a
    trace."""
    symbolic_build = getattr(model, "_symbolic_build", None)
    if symbolic_build is not None:  # Keras 3: what fit calls before its first step
        symbolic_build(data_batch=batch)
    model.optimizer.build(model.trainable_variables)  # a no-op once built


def _epoch_function(batches: tf.data.Dataset, step: Any) -> Any:
    """A traced function that runs ``step`` on every batch of ``batches``, the loop in the
    graph: the batches' iterator is made at each call, so each call is one pass (one epoch,
    reshuffled as ``batches`` says)."""

    def one_pass() -> tf.Tensor:
        batch_iterator = iter(batches)

        def body(batch: Any) -> list[Any]:
            x, y = batch.get_value()
            step((x, y))
            return [batch_iterator.get_next_as_optional()]

        # one iteration at a time: each step's updates precede the next step's reads
        tf.while_loop(
            lambda batch: batch.has_value(),
            body,
            [batch_iterator.get_next_as_optional()],
            parallel_iterations=1,
        )
        return tf.constant(0)

    return tf.function(one_pass, autograph=False)


def fit_epochs(
    model: keras.Model,
    training: tf.data.Dataset,
    validation: tf.data.Dataset,
    *,
    epochs: int,
    initial_epoch: int,
    callbacks: list[keras.callbacks.Callback],
) -> None:
    """Train ``model`` (compiled) from ``initial_epoch`` to ``epochs`` on ``training``'s
    batches, validating on ``validation``'s after each epoch, as ``model.fit`` would."""
    # a validation batch, not a training one: iterating the training batches would move
    # their shuffling on by an epoch
    first = next(iter(validation.take(1)), None)
    if first is None:
        raise ValueError("no validation rows: a trial is scored on them")
    x, y = first
    _build(model, (x[:1], y[:1]))
    train_epoch = _epoch_function(training, model.train_step)
    test_epoch = _epoch_function(validation, model.test_step)
    hooks = keras.callbacks.CallbackList(
        callbacks, model=model, add_history=False, add_progbar=False, epochs=epochs, verbose=0
    )
    model.stop_training = False
    hooks.on_train_begin()
    for epoch in range(initial_epoch, epochs):
        model.reset_metrics()
        hooks.on_epoch_begin(epoch)
        train_epoch()
        logs = _floats(model.get_metrics_result())
        model.reset_metrics()
        test_epoch()
        logs.update({f"val_{name}": v for name, v in _floats(model.get_metrics_result()).items()})
        hooks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    hooks.on_train_end()
