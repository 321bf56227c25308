"""The batches a trial trains and validates on: the job's rows in memory, fed on the trial's thread.

``model.fit(x, y)`` on NumPy arrays makes Keras build a tf.data pipeline with a parallel ``map``,
a ``prefetch`` and tf.data's autotuner. Those run on threads of tf.data's own, which the worker's
TensorFlow thread setting does not cover, so with one worker process per core they take cycles
from the other workers' training (bench/README.md, worker scaling). The rows already sit in
memory and a batch is one ``gather``, so a trial needs none of that: each epoch draws a fresh
permutation of the rows (Keras's ``shuffle=True``), batches are gathered in order, nothing is
prefetched, autotuning is off, and tf.data gets a private pool of the worker's thread count.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf


def _sequential_options(threads: int) -> tf.data.Options:
    options = tf.data.Options()
    # The autotuner's background thread is what cost two workers on two cores the most.
    options.autotune.enabled = False
    if threads > 0:
        options.threading.private_threadpool_size = threads
    return options


def _gather_batches(
    indices: tf.data.Dataset, x: np.ndarray, y: np.ndarray, batch_size: int, threads: int
) -> tf.data.Dataset:
    # Eager tensors are captured by reference; a NumPy array would become a graph constant.
    x_rows, y_rows = tf.convert_to_tensor(x), tf.convert_to_tensor(y)

    def gather(batch: Any) -> tuple[Any, Any]:
        return tf.gather(x_rows, batch), tf.gather(y_rows, batch)

    return indices.batch(batch_size).map(gather).with_options(_sequential_options(threads))


def training_batches(
    x: np.ndarray, y: np.ndarray, batch_size: int, *, seed: int | None, threads: int
) -> tf.data.Dataset:
    """Shuffled batches of ``(x, y)``, a new permutation of all rows every epoch (the last batch
    may be short); ``seed`` makes the sequence of permutations reproducible."""
    rows = len(x)
    order = tf.data.Dataset.range(rows).shuffle(rows, seed=seed, reshuffle_each_iteration=True)
    return _gather_batches(order, x, y, batch_size, threads)


def validation_batches(
    x: np.ndarray, y: np.ndarray, batch_size: int, *, threads: int
) -> tf.data.Dataset:
    """Batches of ``(x, y)`` in row order."""
    return _gather_batches(tf.data.Dataset.range(len(x)), x, y, batch_size, threads)
