"""N fits of a fixed dense net on digits with bare Keras, one TensorFlow thread; prints seconds.

    .venv/bin/python -m bench.bare_fits N [keras|worker]

``keras`` (the default) fits on the NumPy arrays, Keras's own input pipeline; ``worker`` feeds
the batches the way the service's worker does (``worker.training.feeding``). Used by
``worker_scaling`` to measure how much two TensorFlow processes slow each other down with no
service around them, with either input pipeline.
"""

from __future__ import annotations

import os
import sys
import time

PIPELINES = ("keras", "worker")


def fit_seconds(fits: int, pipeline: str = "keras", epochs: int = 8) -> float:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    from sklearn.datasets import load_digits

    from worker.training import feeding

    x, y = load_digits(return_X_y=True)
    x = x.astype("float32") / 16
    started = time.perf_counter()
    for _ in range(fits):
        model = keras.Sequential(
            [
                keras.Input((64,)),
                keras.layers.Dense(96, activation="relu"),
                keras.layers.Dense(96, activation="relu"),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        if pipeline == "worker":
            inputs = {
                "x": feeding.training_batches(x[:1400], y[:1400], 32, seed=None, threads=1),
                "validation_data": feeding.validation_batches(x[1400:], y[1400:], 32, threads=1),
                "shuffle": False,
            }
        else:
            inputs = {
                "x": x[:1400],
                "y": y[:1400],
                "validation_data": (x[1400:], y[1400:]),
                "batch_size": 32,
            }
        model.fit(**inputs, epochs=epochs, verbose=0)
        keras.backend.clear_session()
    return time.perf_counter() - started


if __name__ == "__main__":
    pipeline = sys.argv[2] if len(sys.argv) > 2 else "keras"
    if pipeline not in PIPELINES:
        sys.exit(f"pipeline must be one of {PIPELINES}, not {pipeline!r}")
    print(f"{fit_seconds(int(sys.argv[1]), pipeline):.3f}")
