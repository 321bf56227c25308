"""The batches a trial trains on: every row once per epoch, reshuffled, seeded, no autotuning."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from worker.training.feeding import training_batches, validation_batches

ROWS = 50


def _rows() -> tuple[np.ndarray, np.ndarray]:
    y = np.arange(ROWS, dtype=np.int32)
    x = np.stack([y * 2, y * 3], axis=1).astype("float32")
    return x, y


def _epoch(dataset) -> tuple[list[int], list[int]]:
    """The targets of one pass over ``dataset`` in order, and its batch sizes."""
    targets: list[int] = []
    sizes: list[int] = []
    for x, y in dataset:
        np.testing.assert_array_equal(x.numpy()[:, 0], y.numpy() * 2)  # rows stay paired
        np.testing.assert_array_equal(x.numpy()[:, 1], y.numpy() * 3)
        targets += y.numpy().tolist()
        sizes.append(len(y))
    return targets, sizes


def test_each_epoch_is_a_fresh_permutation_of_all_rows() -> None:
    x, y = _rows()
    batches = training_batches(x, y, 16, seed=3, threads=1)
    first, sizes = _epoch(batches)
    second, _ = _epoch(batches)
    assert sorted(first) == sorted(second) == list(range(ROWS))
    assert sizes == [16, 16, 16, 2]  # the last batch is short, as with fit(x, y)
    assert first != second
    assert first != list(range(ROWS))


def test_seed_fixes_the_sequence_of_permutations() -> None:
    x, y = _rows()
    a = training_batches(x, y, 8, seed=11, threads=1)
    b = training_batches(x, y, 8, seed=11, threads=1)
    assert [_epoch(a)[0] for _ in range(3)] == [_epoch(b)[0] for _ in range(3)]
    other = training_batches(x, y, 8, seed=12, threads=1)
    assert _epoch(other)[0] != _epoch(training_batches(x, y, 8, seed=11, threads=1))[0]


def test_validation_batches_keep_row_order() -> None:
    x, y = _rows()
    targets, sizes = _epoch(validation_batches(x, y, 20, threads=1))
    assert targets == list(range(ROWS))
    assert sizes == [20, 20, 10]


@pytest.mark.parametrize("threads", [1, 2])
def test_pipelines_run_without_autotuning_on_the_workers_thread_count(threads: int) -> None:
    x, y = _rows()
    for dataset in (
        training_batches(x, y, 8, seed=None, threads=threads),
        validation_batches(x, y, 8, threads=threads),
    ):
        options = dataset.options()
        assert options.autotune.enabled is False
        assert options.threading.private_threadpool_size == threads


def test_tf_default_threads_leave_the_pool_unset() -> None:
    x, y = _rows()
    options = training_batches(x, y, 8, seed=None, threads=0).options()
    assert options.threading.private_threadpool_size is None
    assert options.autotune.enabled is False


def test_a_model_learns_from_them() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="softmax")])
    model.compile(
        keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    history = model.fit(
        training_batches(x, y, 32, seed=0, threads=1),
        validation_data=validation_batches(x, y, 32, threads=1),
        epochs=3,
        shuffle=False,
        verbose=0,
    )
    assert len(history.history["val_accuracy"]) == 3
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.history["val_accuracy"][-1] > 0.8
