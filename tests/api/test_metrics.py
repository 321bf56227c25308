"""GET /metrics: the API's requests as they happen, the service's state from the database."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from db.models import JobStatus, TrialStatus
from db.values import utcnow
from tests.api.helpers import insert_job, insert_trial


def _samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def test_requests_are_counted_by_route_template_and_status(any_client: TestClient) -> None:
    job_id = insert_job()
    before = _samples(any_client)  # the counters live as long as the process: compare
    for _ in range(3):
        assert any_client.get(f"/api/v1/jobs/{job_id}").status_code == 200
    assert any_client.get("/api/v1/jobs/nope").status_code == 404
    assert any_client.get("/no/such/route").status_code == 404
    after = _samples(any_client)

    def added(name: str, *labels: tuple[str, str]) -> float:
        return after[(name, labels)] - before.get((name, labels), 0.0)

    route = ("route", "/api/v1/jobs/{job_id}")
    requests = "hpsearch_http_requests_total"
    assert added(requests, ("method", "GET"), route, ("status", "200")) == 3
    assert added(requests, ("method", "GET"), route, ("status", "404")) == 1
    assert added(requests, ("method", "GET"), ("route", "<unmatched>"), ("status", "404")) == 1
    assert added("hpsearch_http_request_duration_seconds_count", ("method", "GET"), route) == 4
    assert not any(job_id in str(labels) for _, labels in after)  # no raw paths


def test_the_service_state_comes_from_the_database(any_client: TestClient) -> None:
    running = insert_job(status=JobStatus.RUNNING)
    insert_job(status=JobStatus.SUCCEEDED)
    insert_trial(running, 0, status=TrialStatus.COMPLETED, duration_s=4.0, epochs=2)
    insert_trial(running, 1, status=TrialStatus.FAILED, duration_s=40.0)
    beat = utcnow() - timedelta(seconds=30)
    insert_trial(running, 2, status=TrialStatus.RUNNING, worker="h:1:2", heartbeat_at=beat)
    enqueued = utcnow() - timedelta(seconds=90)
    insert_trial(running, 3, status=TrialStatus.WAITING, enqueued_at=enqueued, duration_s=None)
    samples = _samples(any_client)
    assert samples[("hpsearch_database_up", ())] == 1
    assert samples[("hpsearch_jobs", (("status", "running"),))] == 1
    assert samples[("hpsearch_jobs", (("status", "succeeded"),))] == 1
    assert samples[("hpsearch_jobs", (("status", "queued"),))] == 0
    for status, count in [("completed", 1), ("failed", 1), ("running", 1), ("waiting", 1)]:
        assert samples[("hpsearch_trials", (("status", status),))] == count, status
    trial_s = "hpsearch_trial_duration_seconds"
    assert samples[(f"{trial_s}_bucket", (("le", "5.0"),))] == 2  # 4.0 and the running 3.0
    assert samples[(f"{trial_s}_bucket", (("le", "+Inf"),))] == samples[(f"{trial_s}_count", ())]
    assert samples[("hpsearch_epoch_duration_seconds_count", ())] == 2
    age = samples[("hpsearch_worker_heartbeat_age_seconds", (("worker", "h:1:2"),))]
    assert 29 <= age < 60
    assert 89 <= samples[("hpsearch_oldest_waiting_trial_age_seconds", ())] < 120
