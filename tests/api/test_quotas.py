"""Per-owner quotas: over one, a 429 that names the quota (with Retry-After where waiting
helps); concurrent requests of one owner cannot overshoot together."""

from __future__ import annotations

import threading
from typing import Any

from fastapi.testclient import TestClient

from api.errors import QuotaExceededError
from api.services import jobs as services
from db.engine import session_scope
from db.models import OPEN_MODE_OWNER, JobStatus, TrialStatus
from db.repositories import owners
from db.settings import Settings
from tests.api.conftest import ClientFactory
from tests.api.helpers import SPEC, insert_artifact, insert_job, insert_trial, job_count

API = "/api/v1"
CSV = b"a,b,label\n" + b"".join(b"%d,%d,%d\n" % (i, i * 3, i % 2) for i in range(40))


def _spec(max_trials: int = 3) -> dict[str, Any]:
    return {**SPEC, "search": {**SPEC["search"], "max_trials": max_trials}}


def _quota_error(response: Any, quota: str) -> dict[str, Any]:
    assert response.status_code == 429, response.text
    body = response.json()
    assert (body["error"], body["quota"]) == ("quota_exceeded", quota)
    assert quota in body["detail"]
    return body


def test_active_jobs_quota(sqlite_url: str, make_client: ClientFactory) -> None:
    client = make_client(quota_active_jobs=2, quota_retry_after_s=7)
    assert client.post(f"{API}/jobs", json=_spec()).status_code == 202
    assert client.post(f"{API}/jobs", json=_spec()).status_code == 202
    response = client.post(f"{API}/jobs", json=_spec())
    body = _quota_error(response, "active_jobs")
    assert (body["limit"], body["used"]) == (2, 2)
    assert response.headers["retry-after"] == "7"
    assert job_count() == 2
    # a job that ended frees its place
    first = client.get(f"{API}/jobs").json()["items"][0]["id"]
    assert client.post(f"{API}/jobs/{first}/cancel").status_code == 200
    assert client.post(f"{API}/jobs", json=_spec()).status_code == 202


def test_pending_trials_quota_counts_what_is_left_to_run(
    sqlite_url: str, make_client: ClientFactory
) -> None:
    client = make_client(quota_pending_trials=10)
    insert_job(status=JobStatus.RUNNING, max_trials=8, trials_completed=5)  # 3 left
    assert client.post(f"{API}/jobs", json=_spec(5)).status_code == 202  # 3 + 5 = 8
    body = _quota_error(client.post(f"{API}/jobs", json=_spec(3)), "pending_trials")
    assert (body["limit"], body["used"]) == (10, 8)
    assert "retry-after" in client.post(f"{API}/jobs", json=_spec(3)).headers
    assert client.post(f"{API}/jobs", json=_spec(2)).status_code == 202
    me = client.get(f"{API}/me").json()
    assert me["pending_trials"] == {"limit": 10, "used": 10}
    assert me["active_jobs"]["used"] == 3


def test_stored_bytes_quota_on_uploads_and_jobs(
    sqlite_url: str, make_client: ClientFactory
) -> None:
    client = make_client(quota_stored_bytes=1000)
    first = client.post(f"{API}/datasets", files={"file": ("a.csv", CSV)}, data={"target": "label"})
    assert first.status_code == 201, first.text
    stored = first.json()["stored_bytes"]
    assert 0 < stored < 1000 < 2 * stored
    response = client.post(
        f"{API}/datasets", files={"file": ("b.csv", CSV)}, data={"target": "label"}
    )
    body = _quota_error(response, "stored_bytes")
    assert body["used"] == stored
    assert "retry-after" not in response.headers  # waiting does not free space
    assert "delete" in body["detail"]

    # models count too; deleting a finished job frees its bytes
    done = insert_job(status=JobStatus.SUCCEEDED)
    insert_artifact(done, 0, b"k" * 3000, {"task": "binary"})
    _quota_error(client.post(f"{API}/jobs", json=_spec()), "stored_bytes")
    assert client.get(f"{API}/me").json()["stored_bytes"]["used"] == stored + 3000
    assert client.delete(f"{API}/jobs/{done}").status_code == 204
    assert client.get(f"{API}/jobs/{done}").status_code == 404
    assert client.post(f"{API}/jobs", json=_spec()).status_code == 202
    queued = client.get(f"{API}/jobs").json()["items"][0]["id"]
    response = client.delete(f"{API}/jobs/{queued}")
    assert response.status_code == 409
    assert "cancel it first" in response.json()["detail"]
    # a cancelled job whose last trial is still stopping keeps its rows until that trial ends
    stopping = insert_job(status=JobStatus.CANCELLED)
    insert_trial(stopping, 0, status=TrialStatus.RUNNING)
    response = client.delete(f"{API}/jobs/{stopping}")
    assert response.status_code == 409
    assert "stopping" in response.json()["detail"]


def test_owner_overrides_beat_the_defaults(sqlite_url: str, make_client: ClientFactory) -> None:
    client = make_client(quota_active_jobs=5)
    with session_scope() as session:
        owners.set_quotas(session, OPEN_MODE_OWNER, active_jobs=1)
    assert client.post(f"{API}/jobs", json=_spec()).status_code == 202
    _quota_error(client.post(f"{API}/jobs", json=_spec()), "active_jobs")
    assert client.get(f"{API}/me").json()["active_jobs"] == {"limit": 1, "used": 1}


def test_concurrent_submissions_cannot_overshoot(
    database_url: str, make_client: ClientFactory
) -> None:
    client: TestClient = make_client()
    settings = Settings(migrate_on_start=False, quota_active_jobs=3)
    spec = services.validate_spec(settings, OPEN_MODE_OWNER, _spec())
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def submit() -> None:
        start.wait()
        try:
            services.submit_job(settings, client.app.state.queue, OPEN_MODE_OWNER, spec)
            outcomes.append("accepted")
        except QuotaExceededError:
            outcomes.append("refused")

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["accepted"] * 3 + ["refused"] * 5
    assert job_count() == 3
