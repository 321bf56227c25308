"""Model download and prediction with a tiny real Keras model stored as a ModelArtifact."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.errors import InputValidationError
from api.inference import format_output, prepare_rows
from db.models import JobStatus
from tests.api.conftest import ClientFactory
from tests.api.helpers import insert_artifact, insert_job

API = "/api/v1"
SIGNATURE: dict[str, Any] = {
    "task": "multiclass",
    "input_shape": [4],
    "n_outputs": 3,
    "class_labels": ["setosa", "versicolor", "virginica"],
    "objective": "val_accuracy",
    "score": 0.9,
    "keras_version": "3",
}


@pytest.fixture(scope="module")
def keras_model() -> tuple[bytes, Any]:
    """A 4-feature Dense classifier with dropout, as ``.keras`` bytes, and the model itself."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input(shape=(4,)),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.keras"
        model.save(path)
        return path.read_bytes(), model


def test_no_model_yet(client: TestClient) -> None:
    running = insert_job(status=JobStatus.RUNNING)
    finished = insert_job(status=JobStatus.FAILED)
    for job_id, status in ((running, 409), (finished, 404)):
        assert client.get(f"{API}/jobs/{job_id}/model").status_code == status
        response = client.post(f"{API}/jobs/{job_id}/predict", json={"rows": [[1, 2, 3, 4]]})
        assert response.status_code == status


def test_download_and_predict(
    client: TestClient, make_client: ClientFactory, keras_model: tuple[bytes, Any]
) -> None:
    content, model = keras_model
    sha = hashlib.sha256(content).hexdigest()
    job_id = insert_job(status=JobStatus.RUNNING)
    # while the job runs the artifacts have no rank yet: the score decides
    insert_artifact(job_id, 3, content, SIGNATURE, rank=None, score=0.9)

    response = client.get(f"{API}/jobs/{job_id}/model")
    assert response.status_code == 200, response.text
    assert response.content == content
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["x-model-sha256"] == sha
    assert response.headers["x-model-trial-number"] == "3"
    assert f'filename="{job_id}-rank1.keras"' in response.headers["content-disposition"]
    assert client.get(f"{API}/jobs/{job_id}/model", params={"rank": 2}).status_code == 409

    rows = np.random.default_rng(0).normal(size=(6, 4)).round(3)
    response = client.post(f"{API}/jobs/{job_id}/predict", json={"rows": rows.tolist()})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = model.predict(rows.astype("float32"), verbose=0)
    assert body["predictions"] == expected.argmax(axis=1).tolist()
    np.testing.assert_allclose(body["probabilities"], expected, rtol=1e-4, atol=1e-5)
    assert body["labels"] == [SIGNATURE["class_labels"][i] for i in body["predictions"]]
    assert body["model"] == {"trial_number": 3, "rank": 1, "sha256": sha}
    assert body["std"] is None

    # it ran in the spawned child, not in this process
    processes = client.app.state.predictor.child.processes()
    assert processes and all(p.pid != os.getpid() for p in processes)

    mc = client.post(
        f"{API}/jobs/{job_id}/predict", json={"rows": rows.tolist(), "mc_samples": 8}
    ).json()
    assert np.asarray(mc["std"]).shape == (6, 3)
    assert np.asarray(mc["std"]).max() > 0  # dropout was active
    np.testing.assert_allclose(np.sum(mc["probabilities"], axis=1), 1.0, rtol=1e-5)

    bad = client.post(f"{API}/jobs/{job_id}/predict", json={"rows": [[1, 2, 3]]})
    assert bad.status_code == 422
    detail = bad.json()["detail"][0]
    assert detail["field"] == "rows"
    assert "[4]" in detail["message"]

    small = make_client(max_predict_rows=3)
    too_many = small.post(f"{API}/jobs/{job_id}/predict", json={"rows": rows.tolist()})
    assert too_many.status_code == 422
    assert too_many.json()["detail"][0] == {
        "field": "rows",
        "message": "at most 3 rows per request, got 6",
        "limit": 3,
        "type": "too_long",
    }


def test_ranked_artifacts_win(any_client: TestClient) -> None:
    job_id = insert_job(status=JobStatus.SUCCEEDED)
    insert_artifact(job_id, 0, b"first", SIGNATURE, rank=2, score=0.99)
    insert_artifact(job_id, 1, b"second", SIGNATURE, rank=1, score=0.5)
    assert any_client.get(f"{API}/jobs/{job_id}/model").content == b"second"
    assert any_client.get(f"{API}/jobs/{job_id}/model", params={"rank": 2}).content == b"first"
    assert any_client.get(f"{API}/jobs/{job_id}/model", params={"rank": 3}).status_code == 404


def test_prepare_rows() -> None:
    assert prepare_rows([[1, 2], [3, 4]], [2], 10).dtype == np.float32
    assert prepare_rows([[0] * 6], [2, 3], 10).shape == (1, 2, 3)  # flattened rows accepted
    for rows in ([[1, 2], [3]], [["a", "b"]], [[1, float("nan")]], [[1, 2, 3]]):
        with pytest.raises(InputValidationError):
            prepare_rows(rows, [2], 10)


def test_format_output() -> None:
    binary = format_output("binary", np.array([[0.2], [0.7]]), None, ["no", "yes"])
    assert binary == {
        "probabilities": [0.2, 0.7],
        "probability_of": "yes",  # each probability is the class "yes"'s
        "predictions": [0, 1],
        "labels": ["no", "yes"],
    }
    assert format_output("binary", np.array([[0.9]]), None)["probability_of"] == 1
    regression = format_output("regression", np.array([[1.5], [2.5]]), np.array([[0.1], [0.2]]))
    assert regression == {"predictions": [1.5, 2.5], "std": [0.1, 0.2]}
