"""Submitting (with a real broker), reading, listing and cancelling jobs."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient
from kombu import Connection

from db.broker import DISPATCH_JOB_TASK
from db.engine import session_scope
from db.models import Job, JobStatus
from db.settings import get_settings
from search_spaces.schema import JobSpec
from tests.api.conftest import ClientFactory
from tests.api.helpers import SPEC, insert_job, job_count

API = "/api/v1"


def _consume_one(broker_url: str, queue: str) -> dict:
    with Connection(broker_url) as conn:
        simple = conn.SimpleQueue(queue)
        message = simple.get(timeout=5)
        message.ack()
        headers = dict(message.headers)
        simple.close()
    return headers


def test_submit_stores_job_and_enqueues_it(any_client: TestClient) -> None:
    spec = {**SPEC, "model": {**SPEC["model"], "activation": "selu"}}  # selu + glorot: advice
    response = any_client.post(f"{API}/jobs", json=spec)
    assert response.status_code == 202, response.text
    body = response.json()
    job_id = body["id"]
    assert body["status"] == "queued"
    assert body["url"] == f"{API}/jobs/{job_id}"
    assert response.headers["location"] == body["url"]
    assert any(w["code"] == "selu_init" for w in body["warnings"])
    assert all(set(w) == {"code", "message", "fields"} for w in body["warnings"])

    job = any_client.get(body["url"]).json()
    assert job["status"] == "queued"
    assert (job["algorithm"], job["dataset"], job["max_trials"]) == ("random", "iris", 3)
    assert (job["objective"], job["direction"]) == ("val_accuracy", "max")
    assert job["warnings"] == body["warnings"]
    assert job["progress"] == 0.0
    assert job["created_at"].endswith(("Z", "+00:00"))
    # the stored spec is the normalised spec and round-trips through the schema
    assert JobSpec.model_validate(job["spec"]) == JobSpec.model_validate(spec)

    settings = get_settings()
    headers = _consume_one(settings.resolved_broker_url(), settings.queue_name)
    assert headers["task"] == DISPATCH_JOB_TASK
    assert headers["id"] == job_id
    assert json.loads(headers["argsrepr"].replace("'", '"')) == [job_id]


@pytest.mark.integration
def test_submit_with_redis_broker(
    sqlite_url: str, redis_url: str, monkeypatch: pytest.MonkeyPatch, make_client: ClientFactory
) -> None:
    import redis

    monkeypatch.setenv("HPSEARCH_BROKER_URL", redis_url)
    client = make_client()
    response = client.post(f"{API}/jobs", json=SPEC)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]

    queue = get_settings().queue_name
    r = redis.Redis.from_url(redis_url)
    assert r.llen(queue) == 1
    message = json.loads(r.lindex(queue, 0))
    assert message["headers"]["id"] == job_id
    assert message["headers"]["task"] == DISPATCH_JOB_TASK
    assert message["properties"]["delivery_info"]["routing_key"] == queue


def test_unreachable_broker_is_a_fast_503_and_leaves_no_job(
    sqlite_url: str, make_client: ClientFactory
) -> None:
    client = make_client(broker_url="redis://127.0.0.1:1/0", broker_connect_timeout_s=1.0)
    started = time.monotonic()
    response = client.post(f"{API}/jobs", json=SPEC)
    assert time.monotonic() - started < 5
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "broker_unavailable"
    assert job_count() == 0


def test_unknown_job_is_404(client: TestClient) -> None:
    for method, path in [
        ("get", "/jobs/nope"),
        ("post", "/jobs/nope/cancel"),
        ("get", "/jobs/nope/trials"),
        ("get", "/jobs/nope/trials/0"),
        ("get", "/jobs/nope/model"),
    ]:
        response = getattr(client, method)(f"{API}{path}")
        assert response.status_code == 404, path
        assert response.json() == {"error": "not_found", "detail": "job 'nope' not found"}


def test_hostile_job_ids_are_404_on_every_database(any_client: TestClient) -> None:
    # NUL bytes, quotes and traversal never reach SQL (PostgreSQL would reject the NUL itself).
    for job_id in ["%00abc", "x'%20or%201=1--", "..%2F..%2Fetc", "a" * 32, "0" * 500]:
        response = any_client.get(f"{API}/jobs/{job_id}")
        assert response.status_code == 404, job_id
        assert response.json()["error"] == "not_found"


def test_list_pages_and_filters(any_client: TestClient) -> None:
    ids = [insert_job(name=f"j{i}") for i in range(5)]
    insert_job(name="done", status=JobStatus.SUCCEEDED)

    page = any_client.get(f"{API}/jobs", params={"limit": 2, "offset": 0}).json()
    assert (page["total"], page["limit"], page["offset"]) == (6, 2, 0)
    assert len(page["items"]) == 2
    second = any_client.get(f"{API}/jobs", params={"limit": 2, "offset": 2}).json()
    seen = {j["id"] for j in page["items"]} | {j["id"] for j in second["items"]}
    assert len(seen) == 4

    queued = any_client.get(f"{API}/jobs", params={"status": "queued", "limit": 100}).json()
    assert queued["total"] == 5
    assert {j["id"] for j in queued["items"]} == set(ids)
    done = any_client.get(f"{API}/jobs", params={"status": "succeeded"}).json()
    assert [j["name"] for j in done["items"]] == ["done"]
    assert done["items"][0]["progress"] == 1.0

    for params in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"status": "sleeping"}):
        response = any_client.get(f"{API}/jobs", params=params)
        assert response.status_code == 422, params
        assert response.json()["error"] == "validation_error"


def test_cancel_transitions(any_client: TestClient) -> None:
    queued = insert_job()
    running = insert_job(status=JobStatus.RUNNING)
    finished = insert_job(status=JobStatus.SUCCEEDED)

    body = any_client.post(f"{API}/jobs/{queued}/cancel").json()
    assert body["status"] == "cancelled"
    assert body["finished_at"] is not None

    body = any_client.post(f"{API}/jobs/{running}/cancel").json()
    assert body["status"] == "running"
    assert body["cancel_requested"] is True
    assert body["finished_at"] is None

    for job_id in (finished, queued):
        response = any_client.post(f"{API}/jobs/{job_id}/cancel")
        assert response.status_code == 409
        assert response.json()["error"] == "conflict"

    with session_scope() as session:
        assert session.get(Job, running).cancel_requested is True


def test_a_bayesian_job_records_the_random_start_it_uses(client: TestClient) -> None:
    spec = {
        **SPEC,
        "model": {"depth": {"type": "int", "min": 1, "max": 2}, "units": 8},
        "search": {"algorithm": "bayesian", "max_trials": 12},
    }
    submitted = client.post(f"{API}/jobs", json=spec)
    assert submitted.status_code == 202, submitted.text
    job = client.get(submitted.headers["Location"]).json()
    assert job["spec"]["search"]["num_initial_points"] == 3  # 3 x 1 searched, a quarter of 12
    assert JobSpec.model_validate(job["spec"]).initial_points == 3
