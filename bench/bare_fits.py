"""N fits of a fixed dense net on digits with bare Keras, one TensorFlow thread; prints seconds.

    .venv/bin/python -m bench.bare_fits N

Used by ``worker_scaling`` to measure this machine's own ceiling: how much two TensorFlow
processes slow each other down with no service around them.
"""

from __future__ import annotations

import os
import sys
import time


def fit_seconds(fits: int, epochs: int = 8) -> float:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    from sklearn.datasets import load_digits

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
        model.fit(
            x[:1400],
            y[:1400],
            validation_data=(x[1400:], y[1400:]),
            epochs=epochs,
            batch_size=32,
            verbose=0,
        )
        keras.backend.clear_session()
    return time.perf_counter() - started


if __name__ == "__main__":
    print(f"{fit_seconds(int(sys.argv[1])):.3f}")
