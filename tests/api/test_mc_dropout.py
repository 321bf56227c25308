"""MC-dropout predictions sample the dropout layers only: batch normalization (and every other
layer) runs in inference mode, so a row predicted alone is normalized by the moving statistics,
not by its own. Runs the prediction process's function in this process, on a real Keras model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from api.inference import _child_predict


def _model_with_batch_norm_and_dropout(path: Path) -> tuple[bytes, object]:
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input((4,))
    x = keras.layers.Dense(16, activation="relu")(inputs)
    norm = keras.layers.BatchNormalization()
    x = norm(x)
    x = keras.layers.Dropout(0.3)(x)
    model = keras.Model(inputs, keras.layers.Dense(1)(x))
    # trained statistics far from any single row's own
    norm.moving_mean.assign(np.full(16, 0.5, "float32"))
    norm.moving_variance.assign(np.full(16, 4.0, "float32"))
    model.save(path)
    return path.read_bytes(), model


def test_mc_dropout_samples_dropout_only(tmp_path: Path) -> None:
    content, model = _model_with_batch_norm_and_dropout(tmp_path / "model.keras")
    rows = np.random.default_rng(0).normal(size=(6, 4)).astype("float32")
    exact = model.predict(rows, verbose=0)[:, 0]  # type: ignore[attr-defined]
    means, stds = [], []
    for i in range(len(rows)):  # one row per request: batch statistics would erase the row
        mean, std = _child_predict("bn-dropout", content, rows[i : i + 1], 200)
        assert std is not None
        means.append(float(mean[0, 0]))
        stds.append(float(std[0, 0]))
    # the dropout average of a linear head is the inference output; sampling error ~ std/14
    assert np.allclose(means, exact, atol=0.06), (means, exact.tolist())
    assert np.std(means) > 0.1  # rows keep their own predictions (the bug: all alike)
    assert all(s > 0.01 for s in stds)  # and dropout really samples
    batch_mean, _ = _child_predict("bn-dropout", content, rows, 200)
    assert np.allclose(batch_mean[:, 0], exact, atol=0.06)  # the same in one batch
