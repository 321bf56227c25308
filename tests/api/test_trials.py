"""The leaderboard (allow-listed sort keys, nulls last, filters, paging) and trial detail."""

from __future__ import annotations

from fastapi.testclient import TestClient

from db.models import TrialStatus
from tests.api.helpers import insert_job, insert_trial

API = "/api/v1"


def _numbers(client: TestClient, job_id: str, **params: object) -> list[int]:
    response = client.get(f"{API}/jobs/{job_id}/trials", params=params)
    assert response.status_code == 200, response.text
    return [t["number"] for t in response.json()["items"]]


def _job_with_trials(direction: str) -> str:
    job_id = insert_job(
        direction=direction, objective="val_loss" if direction == "min" else "val_accuracy"
    )
    insert_trial(job_id, 0, score=0.7, epochs=3, duration_s=5.0)
    insert_trial(job_id, 1, score=0.9, epochs=1, duration_s=2.0)
    insert_trial(job_id, 2, score=None, status=TrialStatus.FAILED, failure_reason="boom")
    insert_trial(job_id, 3, score=0.8, epochs=2, duration_s=None)
    insert_trial(job_id, 4, score=None, status=TrialStatus.DIVERGED)
    return job_id


def test_leaderboard_sorts_by_direction_nulls_last(any_client: TestClient) -> None:
    maximise = _job_with_trials("max")
    minimise = _job_with_trials("min")
    assert _numbers(any_client, maximise) == [1, 3, 0, 2, 4]
    assert _numbers(any_client, minimise) == [0, 3, 1, 2, 4]
    assert _numbers(any_client, maximise, order="asc") == [0, 3, 1, 2, 4]
    assert _numbers(any_client, maximise, sort="number", order="desc") == [4, 3, 2, 1, 0]
    assert _numbers(any_client, maximise, sort="duration_s") == [1, 2, 0, 4, 3]
    assert _numbers(any_client, maximise, sort="epochs_run", order="desc") == [0, 3, 1, 2, 4]
    assert _numbers(any_client, maximise, sort="started_at") == [0, 1, 2, 3, 4]


def test_leaderboard_filters_and_pages(any_client: TestClient) -> None:
    job_id = _job_with_trials("max")
    page = any_client.get(
        f"{API}/jobs/{job_id}/trials", params={"status": "completed", "limit": 2}
    ).json()
    assert page["total"] == 3
    assert [t["number"] for t in page["items"]] == [1, 3]
    assert _numbers(any_client, job_id, status="completed", limit=2, offset=2) == [0]
    assert _numbers(any_client, job_id, status="failed") == [2]
    first = any_client.get(f"{API}/jobs/{job_id}/trials").json()["items"][0]
    assert first["timings"]["duration_s"] == 2.0
    assert set(first) >= {"hyperparameters", "metrics", "parameter_count", "failure_reason"}


def test_sort_key_is_allow_listed(client: TestClient) -> None:
    job_id = _job_with_trials("max")
    for params in (
        {"sort": "score;drop table trials"},
        {"sort": "hyperparameters"},
        {"order": "sideways"},
        {"status": "sleeping"},
        {"limit": 1000},
    ):
        response = client.get(f"{API}/jobs/{job_id}/trials", params=params)
        assert response.status_code == 422, params
        body = response.json()
        assert body["error"] == "validation_error"
        assert body["detail"][0]["field"] == next(iter(params))
    assert len(_numbers(client, job_id)) == 5  # the table is still there


def test_trial_detail_has_epochs(any_client: TestClient) -> None:
    job_id = _job_with_trials("max")
    detail = any_client.get(f"{API}/jobs/{job_id}/trials/0").json()
    assert detail["number"] == 0
    assert detail["epochs_run"] == len(detail["epochs"]) == 3
    assert [e["epoch"] for e in detail["epochs"]] == [0, 1, 2]
    assert set(detail["epochs"][0]) == {
        "execution",
        "epoch",
        "metrics",
        "learning_rate",
        "duration_s",
        "health",
    }
    assert detail["epochs"][0]["health"] is None  # not probed
    assert detail["epochs"][0]["metrics"]["loss"] == 1.0
    failed = any_client.get(f"{API}/jobs/{job_id}/trials/2").json()
    assert failed["failure_reason"] == "boom"
    assert failed["epochs"] == []
    missing = any_client.get(f"{API}/jobs/{job_id}/trials/99")
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"
