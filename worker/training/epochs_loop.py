"""A trial's epochs: Keras's own train and test steps, in a loop leaner than ``Model.fit``.

Measured on the digits 2x64 network (one TensorFlow thread, bench/trial_fixed_cost.py): under
``fit`` a trial's first epoch takes ~0.6 s against ~0.05 s for the next ones, whatever its
length. Here the loop over an epoch's batches runs in the graph (a ``tf.while_loop`` over the
epoch's iterator, at most ``BATCHES_PER_CALL`` batches a call), so a step costs no Python call:
the steady epoch on digits 2x64 takes ~0.017 s against ~0.041 s with a Python loop calling a
traced step, for ~0.05 s more in the first one (tracing the loop, and its first run). The
optimizer's and the compiled metrics' variables are built before the trace; the steps
themselves are Keras's (``train_step``, ``test_step``: the same loss, regularization, gradient
clipping, metrics and logs), and the callbacks see what ``fit`` shows them:
``on_train_begin``, ``on_epoch_begin``, ``on_epoch_end(epoch, logs)`` with ``loss``, the
metrics and their ``val_`` twins, and ``on_train_end``; ``model.stop_training`` ends the loop.
No per-batch hooks: nothing of the worker's needs one. Adam's update runs as TensorFlow's fused
kernel (``worker.training.fused_updates``): fewer ops to trace.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from worker.training.fused_updates import fused_updates


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


#: batches one call of a traced epoch runs at most: Python gets control back at least this
#: often (a Celery soft time limit is a signal, handled only between calls)
BATCHES_PER_CALL = 128


def _epoch_function(batches: tf.data.Dataset, step: Any) -> Callable[[], None]:
    """A pass over ``batches`` (one epoch, reshuffled as ``batches`` says), running ``step`` on
    each in a traced loop: calls of at most ``BATCHES_PER_CALL`` batches, each a
    ``tf.while_loop`` over the pass's iterator, traced once (the iterator and the count are its
    arguments)."""
    batch_count = int(batches.cardinality())
    if batch_count < 0:
        raise ValueError("the batches' number is unknown")

    def some_batches(batch_iterator: Any, count: tf.Tensor) -> tf.Tensor:
        def body(done: tf.Tensor) -> list[tf.Tensor]:
            x, y = batch_iterator.get_next()
            step((x, y))
            return [done + 1]

        # one iteration at a time: each step's updates precede the next step's reads
        tf.while_loop(lambda done: done < count, body, [tf.constant(0)], parallel_iterations=1)
        return count

    traced = tf.function(some_batches, autograph=False)

    def one_pass() -> None:
        batch_iterator = iter(batches)
        for start in range(0, batch_count, BATCHES_PER_CALL):
            traced(batch_iterator, tf.constant(min(BATCHES_PER_CALL, batch_count - start)))

    return one_pass


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
    with fused_updates(model.optimizer):  # the train step is traced in its first epoch
        for epoch in range(initial_epoch, epochs):
            model.reset_metrics()
            hooks.on_epoch_begin(epoch)
            train_epoch()
            logs = _floats(model.get_metrics_result())
            model.reset_metrics()
            test_epoch()
            results = _floats(model.get_metrics_result())
            logs.update({f"val_{name}": value for name, value in results.items()})
            hooks.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
    hooks.on_train_end()
