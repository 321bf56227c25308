"""Prediction rows as objects keyed by an uploaded table's column names: encoded exactly as the
upload was (text one-hot over its categories, a missing number its imputed median), so they
predict what the encoded arrays predict; unknown columns or categories are 422s naming them."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from db.models import JobStatus
from tests.api.helpers import SPEC, insert_artifact, insert_job

API = "/api/v1"
# 12 rows: a numeric column with a gap (median 2.0 imputed), a text column of 3 categories
CSV = b"size,colour,label\n" + b"".join(
    f"{'' if i == 5 else i % 7},{('red', 'green', 'blue')[i % 3]},{'yes' if i % 2 else 'no'}\n".encode()
    for i in range(12)
)


@pytest.fixture
def uploaded_job(client: TestClient) -> tuple[str, dict[str, Any], Any]:
    upload = client.post(
        f"{API}/datasets", files={"file": ("paint.csv", CSV)}, data={"target": "label"}
    )
    assert upload.status_code == 201, upload.text
    dataset = upload.json()
    import keras

    keras.utils.set_random_seed(0)
    n = dataset["n_features"]
    model = keras.Sequential([keras.Input(shape=(n,)), keras.layers.Dense(1, activation="sigmoid")])
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "m.keras")
        content = (Path(tmp) / "m.keras").read_bytes()
    spec = {**SPEC, "dataset": {"name": f"upload:{dataset['id']}"}}
    job_id = insert_job(status=JobStatus.SUCCEEDED, spec=spec, dataset=spec["dataset"]["name"])
    signature = {"task": "binary", "input_shape": [n], "n_outputs": 1,
                 "class_labels": ["no", "yes"], "feature_names": dataset["feature_names"]}  # fmt: skip
    insert_artifact(job_id, 0, content, signature, rank=1, score=0.5)
    assert hashlib.sha256(content).hexdigest()
    return job_id, dataset, model


def test_object_rows_predict_what_the_encoded_arrays_do(
    client: TestClient, uploaded_job: tuple[str, dict[str, Any], Any]
) -> None:
    job_id, dataset, model = uploaded_job
    assert dataset["feature_names"] == ["size", "colour=blue", "colour=green", "colour=red"]
    rows = [{"size": 3, "colour": "green"}, {"colour": "red"}, {"size": 6.5, "colour": "blue"}]
    encoded = np.array([[3, 0, 1, 0], [2.0, 0, 0, 1], [6.5, 1, 0, 0]], dtype="float32")
    response = client.post(f"{API}/jobs/{job_id}/predict", json={"rows": rows})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = model.predict(encoded, verbose=0)[:, 0]
    np.testing.assert_allclose(body["probabilities"], expected, rtol=1e-5, atol=1e-6)
    assert body["probability_of"] == "yes"
    as_arrays = client.post(f"{API}/jobs/{job_id}/predict", json={"rows": encoded.tolist()})
    assert as_arrays.json()["probabilities"] == body["probabilities"]


@pytest.mark.parametrize(
    ("row", "field", "words"),
    [
        ({"size": 1, "colour": "purple"}, "rows.0.colour", ["'red'", "got 'purple'"]),
        ({"size": 1, "colour": "red", "weight": 2}, "rows.0.weight", ["no column 'weight'"]),
        ({"size": "big", "colour": "red"}, "rows.0.size", ["numeric"]),
        ({"size": True, "colour": "red"}, "rows.0.size", ["numeric"]),
        ({"size": 1}, "rows.0.colour", ["categories"]),  # the upload had no missing colour
    ],
)
def test_bad_object_rows_name_the_row_and_column(
    client: TestClient,
    uploaded_job: tuple[str, dict[str, Any], Any],
    row: dict[str, Any],
    field: str,
    words: list[str],
) -> None:
    job_id, _, _ = uploaded_job
    response = client.post(f"{API}/jobs/{job_id}/predict", json={"rows": [row]})
    assert response.status_code == 422, response.text
    (detail,) = response.json()["detail"]
    assert detail["field"] == field
    for word in words:
        assert word in detail["message"], detail


def test_object_rows_need_an_uploaded_dataset(client: TestClient) -> None:
    import keras

    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(3)])
    with tempfile.TemporaryDirectory() as tmp:
        model.save(Path(tmp) / "m.keras")
        content = (Path(tmp) / "m.keras").read_bytes()
    job_id = insert_job(status=JobStatus.SUCCEEDED)
    insert_artifact(job_id, 0, content, {"task": "multiclass", "input_shape": [4]}, rank=1)
    response = client.post(f"{API}/jobs/{job_id}/predict", json={"rows": [{"a": 1}]})
    assert response.status_code == 422
    assert "send each row as an array" in response.json()["detail"][0]["message"]
