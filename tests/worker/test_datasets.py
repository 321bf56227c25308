"""Dataset loading: seeded, stratified splits; no standardization outside the model."""

from __future__ import annotations

import numpy as np
import pytest

from search_spaces.schema import DatasetSpec
from worker.training.datasets import DatasetUnavailableError, load_dataset, remembered_dataset


def test_split_is_seeded_and_sizes_follow_the_spec() -> None:
    spec = DatasetSpec(name="digits", max_rows=300, validation_split=0.2, split_seed=7)
    a, b = load_dataset(spec), load_dataset(spec)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_val, b.y_val)
    assert len(a.x_train) == spec.training_rows == 240
    assert len(a.x_val) == 60
    assert a.x_train.dtype == np.float32 and a.y_train.dtype == np.int32
    assert a.info["rows_total"] == 1797 and a.info["rows_train"] == 240
    assert a.info["class_labels"] == [str(i) for i in range(10)]
    assert a.info["standardization"] == "fitted on the training split only"
    other = load_dataset(DatasetSpec(name="digits", max_rows=300, split_seed=8))
    assert not np.array_equal(a.y_val, other.y_val)


def test_a_built_in_dataset_is_kept_read_only_for_the_next_jobs() -> None:
    spec = DatasetSpec(name="digits", max_rows=300, split_seed=3)
    kept = remembered_dataset(spec)
    assert remembered_dataset(DatasetSpec(name="digits", max_rows=300, split_seed=3)) is kept
    np.testing.assert_array_equal(kept.x_train, load_dataset(spec).x_train)
    np.testing.assert_array_equal(kept.y_val, load_dataset(spec).y_val)
    for part in (kept.x_train, kept.y_val, kept.train_rows):
        with pytest.raises(ValueError, match="read-only"):
            part[0] = 0
    other = remembered_dataset(DatasetSpec(name="digits", max_rows=300, split_seed=4))
    assert other is not kept and not np.array_equal(other.y_val, kept.y_val)


def test_split_is_stratified() -> None:
    data = load_dataset(DatasetSpec(name="iris", validation_split=0.2))
    # 150 rows, 3 balanced classes -> 10 of each class in the 30 validation rows.
    assert np.bincount(data.y_val).tolist() == [10, 10, 10]
    assert np.bincount(data.y_train).tolist() == [40, 40, 40]


def test_regression_targets_are_float_and_features_raw() -> None:
    data = load_dataset(DatasetSpec(name="diabetes"))
    assert data.y_train.dtype == np.float32
    assert data.info["class_labels"] is None
    # Not standardized here: that is the model's Normalization layer, adapted on x_train.
    digits = load_dataset(DatasetSpec(name="digits"))
    assert digits.x_train.max() == 16.0


def test_missing_keras_dataset_names_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    import keras

    def offline(*_a: object, **_k: object) -> None:
        raise OSError("no network")

    monkeypatch.setattr(keras.datasets.boston_housing, "load_data", offline)
    with pytest.raises(DatasetUnavailableError) as err:
        load_dataset(DatasetSpec(name="boston_housing"))
    assert "boston_housing.npz" in str(err.value)
    assert str(tmp_path / "keras-home" / "datasets") in str(err.value)


def test_standardization_statistics_come_from_training_rows_only() -> None:
    from search_spaces.builder import SpecHyperModel
    from search_spaces.hyperparameters import build_hyperparameters
    from search_spaces.schema import JobSpec

    spec = JobSpec.model_validate({"dataset": {"name": "wine"}, "model": {"depth": 1}})
    data = load_dataset(spec.dataset)
    info = spec.dataset.info
    model = SpecHyperModel(
        spec, info.input_shape, info.n_outputs, spec.task, normalization_data=data.x_train
    ).build(build_hyperparameters(spec))
    mean = np.asarray(model.get_layer("input_normalization").mean).reshape(-1)
    np.testing.assert_allclose(mean, data.x_train.mean(axis=0), rtol=1e-5)
    all_rows = np.concatenate([data.x_train, data.x_val]).mean(axis=0)
    assert not np.allclose(mean, all_rows, rtol=1e-5)


def test_split_last_takes_the_last_rows_in_order() -> None:
    from sklearn.datasets import load_digits

    raw = load_digits()
    data = load_dataset(DatasetSpec(name="digits", validation_split=0.1, split="last"))
    n_val = round(1797 * 0.1)
    np.testing.assert_array_equal(data.x_val, raw.data[-n_val:].astype(np.float32))
    np.testing.assert_array_equal(data.y_train, raw.target[:-n_val])
    assert data.info["split"] == "last" and data.info["stratified"] is False
    # max_rows keeps the first rows, then the last of those are the validation rows.
    small = load_dataset(DatasetSpec(name="digits", max_rows=100, split="last"))
    np.testing.assert_array_equal(small.y_val, raw.target[80:100])
    np.testing.assert_array_equal(small.y_train, raw.target[:80])
    # its parts own their rows: a slice would keep all 1,797 alive while a process keeps them
    parts = (small.x_train, small.x_val, small.y_train, small.y_val, small.train_rows)
    assert all(part.base is None for part in parts)
    # The seed has nothing to shuffle.
    other = load_dataset(DatasetSpec(name="digits", max_rows=100, split="last", split_seed=5))
    np.testing.assert_array_equal(small.x_val, other.x_val)
