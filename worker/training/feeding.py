"""The batches a trial trains and validates on: the job's rows in memory, fed on the trial's thread.

``model.fit(x, y)`` on NumPy arrays makes Keras build a tf.data pipeline with a parallel ``map``,
a ``prefetch`` and tf.data's autotuner. Those run on threads of tf.data's own, which the worker's
TensorFlow thread setting does not cover, so with one worker process per core they take cycles
from the other workers' training (bench/README.md, worker scaling). The rows already sit in
memory, so a trial needs none of that: each epoch takes the rows in a fresh random order (Keras's
``shuffle=True``) and batches them on the training thread; nothing is prefetched, autotuning is
off, and tf.data gets a private pool of the worker's thread count. (Gathering batches by index
with a ``map`` trains as fast, but tracing the map costs ~20 ms more per trial.)
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def _sequential_options(threads: int) -> tf.data.Options:
    options = tf.data.Options()
    # The autotuner's background thread is what cost two workers on two cores the most.
    options.autotune.enabled = False
    if threads > 0:
        options.threading.private_threadpool_size = threads
    return options


def training_batches(
    x: np.ndarray, y: np.ndarray, batch_size: int, *, seed: int | None, threads: int
) -> tf.data.Dataset:
    """Shuffled batches of ``(x, y)``, a new permutation of all rows every epoch (the last batch
    may be short); ``seed`` makes the sequence of permutations reproducible."""
    rows = tf.data.Dataset.from_tensor_slices((x, y))
    # A buffer as large as the data makes each epoch's order a uniform permutation.
    shuffled = rows.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return shuffled.batch(batch_size).with_options(_sequential_options(threads))


def validation_batches(
    x: np.ndarray, y: np.ndarray, batch_size: int, *, threads: int
) -> tf.data.Dataset:
    """Batches of ``(x, y)`` in row order."""
    rows = tf.data.Dataset.from_tensor_slices((x, y))
    return rows.batch(batch_size).with_options(_sequential_options(threads))
