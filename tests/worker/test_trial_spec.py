"""Any trial can be run again as a spec: GET .../trials/{n}/spec writes a trial of a search with
per-layer activations and dropouts as a one-trial spec, and that spec, run, trains the same
network to the same score."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from db.models import JobStatus, TrialStatus
from db.settings import Settings
from search_spaces.schema import JobSpec
from tests.worker.helpers import create_job, drive, get_job, get_trials

SPEC: dict[str, Any] = {
    "dataset": {"name": "digits", "max_rows": 200, "split_seed": 3},
    "model": {
        "depth": {"type": "int", "min": 1, "max": 2},
        "units": {"type": "choice", "values": [8, 12]},
        "per_layer": ["activation", "dropout"],
        "activation": {"type": "choice", "values": ["relu", "selu", "leaky_relu"]},
        "leaky_alpha": {"type": "choice", "values": [0.1, 0.3]},
        "dropout": {"type": "choice", "values": [0.0, 0.2]},
        "kernel_initializer": "auto",
    },
    "optimizer": {"learning_rate": {"type": "float", "min": 1e-3, "max": 1e-2, "sampling": "log"}},
    "training": {"epochs": 2, "batch_size": 32, "early_stopping": {"enabled": False}},
    "search": {"algorithm": "random", "max_trials": 3, "seed": 11},
}


@pytest.fixture
def api(sqlite_url: str) -> Any:
    with TestClient(create_app(Settings(migrate_on_start=False, prewarm_predictor=False))) as c:
        yield c


def test_a_trial_run_again_from_its_spec_gets_its_score(api: TestClient) -> None:
    job_id = create_job(SPEC)
    drive(job_id)
    assert get_job(job_id).status is JobStatus.SUCCEEDED
    trial = get_trials(job_id)[-1]  # not trial 0: its seed is the search's own plus 100 x n
    assert trial.number == 2 and trial.status is TrialStatus.COMPLETED

    response = api.get(f"/api/v1/jobs/{job_id}/trials/{trial.number}/spec")
    assert response.status_code == 200, response.text
    assert response.headers["x-reproduction"] == "exact"
    written = response.json()
    layers = written["model"]["layers"]
    assert len(layers) == trial.hyperparameters["depth"]
    for i, layer in enumerate(layers):  # every per-layer value written out, auto resolved
        assert layer["activation"] == trial.hyperparameters[f"activation_{i}"]
        assert layer["dropout"] == trial.hyperparameters[f"dropout_{i}"]
        expected = {"selu": "lecun_normal"}.get(layer["activation"], "he_normal")
        assert layer["kernel_initializer"] == expected
    assert written["training"]["seed"] == 11 + 100 * trial.number
    assert JobSpec.model_validate(written).search.max_trials == 1

    submitted = api.post("/api/v1/jobs", json=written)
    assert submitted.status_code == 202, submitted.text
    again = submitted.json()["id"]
    drive(again)
    (rerun,) = get_trials(again)
    assert rerun.status is TrialStatus.COMPLETED
    before, after = trial.hyperparameters, rerun.hyperparameters
    for i in range(before["depth"]):  # per layer now, whether it was shared or not
        for base in ("units", "activation", "leaky_alpha", "batch_norm", "dropout"):
            assert after.get(f"{base}_{i}") == before.get(f"{base}_{i}", before.get(base)), base
    assert {k: v for k, v in after.items() if k in before} == {
        k: v for k, v in before.items() if k in after
    }
    assert rerun.parameter_count == trial.parameter_count
    assert rerun.score == pytest.approx(trial.score, abs=1e-6)


def test_a_trial_of_an_unknown_number_or_job_is_a_404(api: TestClient) -> None:
    job_id = create_job(SPEC)
    assert api.get(f"/api/v1/jobs/{job_id}/trials/5/spec").status_code == 404
    assert api.get("/api/v1/jobs/nope/trials/0/spec").status_code == 404


@pytest.mark.parametrize("split", ["stratified", "last"])
def test_a_jobs_split_rows_rebuild_its_validation_data(api: TestClient, split: str) -> None:
    from sklearn.datasets import load_digits

    from worker.training.datasets import load_dataset

    spec = {**SPEC, "dataset": {**SPEC["dataset"], "split": split}}
    job_id = create_job(spec)
    assert api.get(f"/api/v1/jobs/{job_id}/split").status_code == 409  # not loaded yet
    drive(job_id)
    rows = api.get(f"/api/v1/jobs/{job_id}/split").json()
    assert rows["rows_total"] == 1797
    assert len(rows["train"]) + len(rows["validation"]) == 200
    assert not set(rows["train"]) & set(rows["validation"])
    loaded = load_dataset(JobSpec.model_validate(spec).dataset)
    digits = load_digits()
    assert (digits.data[rows["validation"]].astype("float32") == loaded.x_val).all()
    assert (digits.target[rows["train"]] == loaded.y_train).all()
    assert get_job(job_id).dataset_info["rows_val"] == len(rows["validation"])  # type: ignore[index]
