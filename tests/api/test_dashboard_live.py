"""The job page's live updates over HTTP: its version moves when a trial does, is read at most
every half second and once at a time for all of a job's streams, and the stream tells each new
version and ends with the job."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.dashboard import live
from db.engine import session_scope
from db.models import JobStatus, Trial, TrialStatus
from tests.api.helpers import insert_job, insert_trial
from tests.api.test_dashboard import START


def test_the_version_moves_when_a_trial_does(
    any_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = any_client
    monkeypatch.setattr(live, "VERSION_TTL_S", 0)
    job_id = insert_job(status=JobStatus.RUNNING, started_at=START)
    version = lambda: client.get(f"/ui/data/jobs/{job_id}/version").json()["version"]  # noqa: E731
    before = version()
    assert version() == before
    insert_trial(job_id, 0, status=TrialStatus.RUNNING, score=None)
    running = version()
    assert running != before
    trial_version = lambda: client.get(f"/ui/data/jobs/{job_id}/trials/0/version").json()  # noqa: E731
    at_start = trial_version()
    with session_scope() as session:
        session.query(Trial).filter_by(job_id=job_id, number=0).one().epochs_run = 1
    # an epoch moves the trial's page, not the job's (rebuilt for every viewer)
    assert trial_version() != at_start and version() == running
    with session_scope() as session:
        trial = session.query(Trial).filter_by(job_id=job_id, number=0).one()
        trial.status, trial.score, trial.finished_at = TrialStatus.COMPLETED, 0.9, START
    assert version() != running
    assert client.get(f"/ui/data/jobs/{job_id}/trials/9/version").status_code == 404
    page = client.get(f"/ui/data/jobs/{job_id}").json()
    assert page["version"] == version() and page["state"]["counts"]["completed"] == 1


def test_a_jobs_version_is_read_at_most_every_half_second(client: TestClient) -> None:
    job_id = insert_job(status=JobStatus.RUNNING, started_at=START)
    version = lambda: client.get(f"/ui/data/jobs/{job_id}/version").json()["version"]  # noqa: E731
    before = version()
    insert_trial(job_id, 0, status=TrialStatus.RUNNING, score=None)
    assert version() == before  # every viewer of the job shares the last read
    time.sleep(live.VERSION_TTL_S + 0.1)
    assert version() != before


def _events(response: Any) -> list[tuple[str, str]]:
    """The (event, data) pairs of a server-sent event stream, to its end."""
    found, event = [], "message"
    for line in response.iter_lines():
        if line.startswith("event: "):
            event = line.removeprefix("event: ")
        elif line.startswith("data: "):
            found.append((event, line.removeprefix("data: ")))
            event = "message"
    return found


def test_the_stream_tells_the_new_version_when_a_trial_ends_and_ends_with_the_job(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import threading

    from api.dashboard import stream

    monkeypatch.setattr(stream, "STREAM_S", 2.0)
    monkeypatch.setattr(stream, "CHECK_S", 0.1)
    monkeypatch.setattr(live, "VERSION_TTL_S", 0)
    job_id = insert_job(status=JobStatus.RUNNING, started_at=START)
    insert_trial(job_id, 0, score=0.7)
    current = client.get(f"/ui/data/jobs/{job_id}/version").json()["version"]
    # a page that has the current version gets nothing until the job moves
    with client.stream("GET", f"/ui/data/jobs/{job_id}/stream?since={current}") as quiet:
        assert quiet.headers["content-type"].startswith("text/event-stream")
        assert _events(quiet) == []
    threading.Timer(0.5, lambda: insert_trial(job_id, 1, score=0.8)).start()
    with client.stream(
        "GET", f"/ui/data/jobs/{job_id}/stream", headers={"Last-Event-ID": current}
    ) as moved:
        events = _events(moved)
    assert [e for e, _ in events] == ["version"]
    moved_to = json.loads(events[0][1])["version"]
    assert moved_to != current
    # the page then fetches that version's data
    data = client.get(f"/ui/data/jobs/{job_id}").json()
    assert data["version"] == moved_to
    assert data["state"]["counts"]["completed"] == 2
    with session_scope() as session:
        from db.models import Job

        session.get(Job, job_id).status = JobStatus.SUCCEEDED
    with client.stream("GET", f"/ui/data/jobs/{job_id}/stream?since={current}") as ended:
        assert [e for e, _ in _events(ended)] == ["version", "end"]


def test_streams_of_one_job_share_one_version_read_at_a_time(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    from api.dashboard import stream

    job_id = insert_job(status=JobStatus.RUNNING, started_at=START)
    reads, real = [], live.job_version

    def slow_read(*args: Any) -> str:
        reads.append(args)
        time.sleep(0.2)  # a read under load: every other stream finds the version expired
        return real(*args)

    monkeypatch.setattr(live, "job_version", slow_read)
    settings = client.app.state.settings

    async def twenty_streams() -> list[str]:
        return await asyncio.gather(
            *(stream._read_version(settings, "local", job_id) for _ in range(20))
        )

    versions = asyncio.run(twenty_streams())
    assert len(reads) == 1 and len(set(versions)) == 1
    assert versions[0] == real(settings, "local", job_id)
    asyncio.run(twenty_streams())  # the next expiry reads again, once
    assert len(reads) == 2
