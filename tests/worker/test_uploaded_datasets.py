"""Uploaded datasets in the worker: loaded from SQL (never unpickled), split like a built-in, and
a whole search on one runs end to end in-process."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from db.engine import session_scope
from db.models import JobStatus, UploadedDataset
from tests.worker.helpers import create_job, drive, get_artifacts, get_job, get_trials, store_upload
from worker.specs import parse_spec
from worker.training.datasets import DatasetUnavailableError, load_dataset, remembered_dataset


def _csv(rows: int = 120, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=rows)
    color = rng.choice(["red", "green", "blue"], size=rows)
    label = np.where(a + (color == "red") > 0.5, "yes", "no")
    frame = pd.DataFrame({"a": a, "b": rng.normal(size=rows), "color": color, "label": label})
    return frame.to_csv(index=False).encode()


def _spec(name: str, **dataset: object) -> dict:
    return {
        "dataset": {"name": name, "split_seed": 1, **dataset},
        "model": {"depth": 1, "units": {"type": "choice", "values": [4, 8]}},
        "training": {"epochs": 2, "batch_size": 16},
        "search": {"max_trials": 2, "seed": 3},
    }


def test_upload_loads_from_sql_with_seeded_stratified_split(sqlite_url: str) -> None:
    name = store_upload(_csv(), "csv", "label")
    spec = parse_spec(_spec(name, max_rows=100, validation_split=0.2))
    a, b = load_dataset(spec.dataset), load_dataset(spec.dataset)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert a.x_train.shape == (80, 5) and a.x_train.dtype == np.float32  # a, b, 3 one-hot
    assert a.y_train.dtype == np.int32 and len(a.y_val) == 20
    assert a.info["rows_total"] == 120 and a.info["rows_used"] == 100
    assert a.info["source"] == "upload" and a.info["stratified"] is True
    assert a.info["class_labels"] == ["no", "yes"]
    assert a.info["feature_names"] == ["a", "b", "color=blue", "color=green", "color=red"]
    # stratified: the class balance of the validation rows follows the whole file's
    share = np.mean(np.concatenate([a.y_train, a.y_val]))
    assert abs(np.mean(a.y_val) - share) <= 0.06


def test_a_deleted_upload_cannot_load(sqlite_url: str) -> None:
    name = store_upload(_csv(), "csv", "label")
    spec = parse_spec(_spec(name))
    # an upload is read again for every job, never kept: its name can be given to other rows
    assert remembered_dataset(spec.dataset) is not remembered_dataset(spec.dataset)
    with session_scope() as session:
        session.query(UploadedDataset).delete()
    with pytest.raises(DatasetUnavailableError, match="no longer exists"):
        load_dataset(spec.dataset)
    with pytest.raises(DatasetUnavailableError, match="no longer exists"):
        remembered_dataset(spec.dataset)


def test_search_on_uploaded_dataset_runs_end_to_end(database_url: str) -> None:
    name = store_upload(_csv(), "csv", "label")
    job_id = create_job(_spec(name))
    drive(job_id)
    job = get_job(job_id)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert job.dataset == name
    assert job.dataset_info["source"] == "upload" and job.dataset_info["rows_train"] == 96
    assert job.trials_completed == 2 == len(get_trials(job_id))
    (best,) = get_artifacts(job_id)
    assert best.signature["task"] == "binary" and best.signature["input_shape"] == [5]
    assert best.signature["class_labels"] == ["no", "yes"]


def test_regression_upload_from_npz_runs(sqlite_url: str) -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 3))
    buf = io.BytesIO()
    np.savez(buf, x=x, y=x @ np.array([1.0, -2.0, 0.5]))
    name = store_upload(buf.getvalue(), "npz")
    spec = _spec(name)
    spec["search"]["max_trials"] = 1
    job_id = create_job(spec)
    drive(job_id)
    job = get_job(job_id)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert job.objective == "val_loss"
    assert job.dataset_info["task"] == "regression"
