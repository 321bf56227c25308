"""The worker's epoch loop trains as Keras's ``fit`` does: the same steps, logs and callbacks."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

from worker.training import epochs_loop, feeding
from worker.training.epochs_loop import fit_epochs
from worker.training.fused_updates import fused_updates


def _data(task: str) -> tuple[np.ndarray, np.ndarray]:
    x, y = load_digits(return_X_y=True)
    x = (x[:250] / 16.0).astype("float32")
    y = y[:250]
    if task == "binary":
        return x, (y % 2).astype("float32")
    if task == "regression":
        return x, y.astype("float32")
    return x, y.astype("int64")


def _model(task: str, seed: int, declared_input: bool = True) -> keras.Model:
    """A small compiled model; without ``declared_input`` it is built only by its first batch
    (the loop then builds it as Keras's ``fit`` does, from the batches' shapes)."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            *([keras.Input((64,))] if declared_input else []),
            keras.layers.Dense(12, activation="relu", kernel_regularizer="l2"),
            keras.layers.BatchNormalization(),
            keras.layers.Dropout(0.1, seed=seed),
            keras.layers.Dense(
                {"multiclass": 10, "binary": 1, "regression": 1}[task],
                activation={"multiclass": "softmax", "binary": "sigmoid", "regression": None}[task],
            ),
        ]
    )
    loss, metrics = {
        "multiclass": ("sparse_categorical_crossentropy", ["accuracy"]),
        "binary": ("binary_crossentropy", ["accuracy", keras.metrics.AUC(name="auc")]),
        "regression": ("mse", ["mae", "mse"]),
    }[task]
    model.compile(optimizer=keras.optimizers.Adam(0.01, clipnorm=1.0), loss=loss, metrics=metrics)
    return model


class Logs(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.epochs: list[dict[str, float]] = []
        self.calls: list[str] = []

    def on_train_begin(self, logs: Any = None) -> None:
        self.calls.append("train_begin")

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.calls.append(f"epoch_begin {epoch}")

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.calls.append(f"epoch_end {epoch}")
        self.epochs.append({k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"})

    def on_train_end(self, logs: Any = None) -> None:
        self.calls.append("train_end")


def trained(
    way: str, task: str, declared_input: bool = True, fused_fit: bool = True
) -> tuple[Logs, list[np.ndarray]]:
    """``_model(task, seed=4)``'s logs and weights after 3 epochs on ``_data(task)``'s first 200
    rows in row order (validated on the other 50) by ``way``: ``fit`` (on Adam's fused kernel
    unless not ``fused_fit``) or the worker's ``loop``."""
    x, y = _data(task)
    # batches of 32: a short last one on both sides. In row order: ``fit`` draws the reshuffled
    # orders of a shuffled dataset in another sequence from the second epoch on (both are
    # seeded permutations)
    model, logs = _model(task, seed=4, declared_input=declared_input), Logs()
    training = feeding.validation_batches(x[:200], y[:200], 32, threads=1)
    validation = feeding.validation_batches(x[200:], y[200:], 32, threads=1)
    if way == "fit":
        with fused_updates(model.optimizer) if fused_fit else nullcontext():
            model.fit(training, validation_data=validation, epochs=3, callbacks=[logs], verbose=0)
    else:
        fit_epochs(model, training, validation, epochs=3, initial_epoch=0, callbacks=[logs])
    return logs, model.get_weights()


@pytest.mark.parametrize(
    ("task", "declared_input"),
    [("multiclass", True), ("binary", True), ("regression", True), ("multiclass", False)],
)
def test_the_loop_logs_what_fit_logs_for_the_same_training(
    task: str, declared_input: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 7 training batches: in calls of 3, 3 and 1 (multiclass), or in one call
    monkeypatch.setattr(epochs_loop, "BATCHES_PER_CALL", 3 if task == "multiclass" else 128)
    # with the loop's Adam kernel in fit too (test_fused_updates.py compares it with Keras's)
    fit_logs, fit_weights = trained("fit", task, declared_input=declared_input)
    loop_logs, loop_weights = trained("loop", task, declared_input=declared_input)
    assert loop_logs.calls == fit_logs.calls
    assert [sorted(e) for e in loop_logs.epochs] == [sorted(e) for e in fit_logs.epochs]
    assert any(name.startswith("val_") for name in loop_logs.epochs[0])
    for fitted, looped in zip(fit_logs.epochs, loop_logs.epochs, strict=True):
        for name, value in fitted.items():
            assert looped[name] == pytest.approx(value, rel=1e-4, abs=1e-6), name
    for a, b in zip(fit_weights, loop_weights, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_a_trial_without_validation_rows_is_refused_before_it_trains() -> None:
    x, y = _data("multiclass")
    model = _model("multiclass", seed=1)
    training = feeding.training_batches(x[:200], y[:200], 32, seed=1, threads=1)
    validation = feeding.validation_batches(x[:0], y[:0], 32, threads=1)
    with pytest.raises(ValueError, match="no validation rows"):
        fit_epochs(model, training, validation, epochs=2, initial_epoch=0, callbacks=[])
    assert not model.optimizer.built


def test_early_stopping_and_a_plateau_work_in_the_loop_as_in_fit() -> None:
    x, y = _data("multiclass")
    model, logs = _model("multiclass", seed=1), Logs()
    stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=1, min_delta=10.0, restore_best_weights=True
    )
    plateau = keras.callbacks.ReduceLROnPlateau(
        monitor="val_loss", factor=0.5, patience=1, min_delta=10.0
    )
    training = feeding.training_batches(x[:200], y[:200], 32, seed=1, threads=1)
    validation = feeding.validation_batches(x[200:], y[200:], 32, threads=1)
    fit_epochs(
        model, training, validation, epochs=10, initial_epoch=2, callbacks=[logs, stopping, plateau]
    )
    # no epoch improves by 10: stopped after patience 1, from the initial epoch on
    assert logs.calls[:2] == ["train_begin", "epoch_begin 2"]
    assert logs.calls[-1] == "train_end" and len(logs.epochs) == 2
    assert stopping.stopped_epoch == 3
    assert float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(0.005)


def test_each_pass_is_a_new_permutation_as_the_batches_give_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(epochs_loop, "BATCHES_PER_CALL", 2)  # 7 batches: 4 calls a pass
    rows = 50
    x, y = np.arange(rows, dtype="float32").reshape(-1, 1), np.arange(rows, dtype="int64")
    order, seen = tf.Variable(tf.zeros([rows], tf.int64)), tf.Variable(0)

    def step(batch: tuple[tf.Tensor, tf.Tensor]) -> None:
        labels = batch[1]
        taken = tf.shape(labels)[0]
        order.scatter_update(tf.IndexedSlices(labels, seen + tf.range(taken)))
        seen.assign_add(taken)

    one_pass = epochs_loop._epoch_function(
        feeding.training_batches(x, y, 8, seed=3, threads=1), step
    )
    passes = []
    for _ in range(2):
        seen.assign(0)
        one_pass()
        passes.append(order.numpy().tolist())
    eager = feeding.training_batches(x, y, 8, seed=3, threads=1)
    expected = [np.concatenate([b.numpy() for _, b in eager]).tolist() for _ in range(2)]
    assert passes == expected
    assert all(sorted(p) == list(range(rows)) for p in passes)
    assert passes[0] != passes[1]
