"""Faults of the whole service on PostgreSQL + Redis: everything restarted mid-search (for
random, Bayesian and Hyperband) while ``hpsearch watch`` follows a job, cancel of a running job,
Redis down for a while."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from celery import Celery

from db.broker import DISPATCH_JOB_TASK, RUN_TRIAL_TASK, celery_config
from db.models import JobStatus, TrialStatus
from db.settings import get_settings
from tests.db.helpers import epochs as epochs_of
from tests.e2e.service import free_port
from tests.faults.helpers import (
    cluster,
    digits_spec,
    job,
    submit,
    training_trial,
    trials,
    wait_final,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(300)]


def test_restart_of_api_workers_and_broker_keeps_finished_trials(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    # two trials per job at a time: the three jobs progress side by side
    service = cluster(tmp_path, postgres_url, redis_url, HPSEARCH_MAX_CONCURRENT_TRIALS_PER_JOB="2")
    try:
        service.start_api()
        service.start_worker("worker-1")
        service.start_worker("worker-2")
        jobs = {
            "random": submit(service, digits_spec(max_trials=6, epochs=4)),
            "bayesian": submit(
                service,
                digits_spec(max_trials=6, epochs=4, algorithm="bayesian", num_initial_points=2),
            ),
            "hyperband": submit(
                service, digits_spec(epochs=3, algorithm="hyperband", hyperband_factor=3)
            ),
        }
        # A user follows one job in a terminal: it rides through the API's restart.
        hpsearch = str(Path(sys.executable).parent / "hpsearch")
        watcher = subprocess.Popen(
            [hpsearch, "watch", jobs["random"], "--interval", "0.3", "--url", service.base_url],
            env=service.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        wait_for(
            "a completed trial in every job",
            lambda: all(
                any(t.status is TrialStatus.COMPLETED for t in trials(j)) for j in jobs.values()
            ),
            service,
            timeout=120,
            every=0.2,
        )
        # Everything dies at once; the broker comes back empty (a restart without persistence).
        for name in ("api", "worker-1", "worker-2"):
            service.kill(name)
        redis.Redis.from_url(redis_url).flushdb()
        done_before = {
            t.id: (t.number, t.score, t.finished_at, t.attempts, t.hyperparameters)
            for j in jobs.values()
            for t in trials(j)
            if t.status is TrialStatus.COMPLETED
        }
        assert all(not job(j).status.is_final for j in jobs.values())

        service.start_api()
        service.start_worker("worker-1")
        service.start_worker("worker-2")
        for algorithm, job_id in jobs.items():
            final = wait_final(job_id, service, timeout=150)
            rows = trials(job_id)
            assert final.status is JobStatus.SUCCEEDED, (algorithm, final.error)
            assert [t.number for t in rows] == list(range(final.max_trials)), algorithm
            assert all(t.status is TrialStatus.COMPLETED for t in rows), algorithm
            assert final.trials_completed == final.max_trials
        after = {
            t.id: (t.number, t.score, t.finished_at, t.attempts, t.hyperparameters)
            for j in jobs.values()
            for t in trials(j)
        }
        for trial_id, before in done_before.items():  # finished trials were not re-run
            assert after[trial_id] == before
        watched, _ = watcher.communicate(timeout=120)
        assert watcher.returncode == 0, watched
        assert "API unreachable" in watched and "succeeded" in watched, watched
        assert job(jobs["hyperband"]).max_trials == 6
        for t in trials(jobs["hyperband"]):  # promoted trials continued from stored weights
            if "tuner/trial_id" in t.hyperparameters:
                first = t.hyperparameters["tuner/initial_epoch"]
                assert epochs_of(t.id)[0] == (0, first)
    finally:
        service.stop()


def test_cancel_running_job_stops_it_for_good(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    service = cluster(tmp_path, postgres_url, redis_url)
    try:
        service.start_api()
        service.start_worker("worker-1")
        job_id = submit(service, digits_spec(max_trials=6, epochs=200))
        running = wait_for("a trial mid-training", lambda: training_trial(job_id, 1), service)
        response = httpx.post(f"{service.base_url}/api/v1/jobs/{job_id}/cancel", timeout=30)
        assert response.status_code == 200, response.text
        asked = time.monotonic()
        final = wait_final(job_id, service, timeout=30)
        assert final.status is JobStatus.CANCELLED
        print(f"cancel: job cancelled {time.monotonic() - asked:.2f} s after the request")
        assert time.monotonic() - asked < 10
        rows = {t.id: t for t in trials(job_id)}
        stopped = rows.pop(running.id)
        assert stopped.status is TrialStatus.CANCELLED and stopped.epochs_run < 200
        assert rows and all(  # the queued trials never started
            t.status is TrialStatus.CANCELLED and t.started_at is None and t.epochs_run == 0
            for t in rows.values()
        )
        snapshot = [(t.id, t.status, t.epochs_run) for t in trials(job_id)]

        # Restarts and stale messages do not bring it back.
        service.kill("worker-1")
        service.kill("api")
        client = Celery("fault-test", set_as_current=False)
        client.conf.update(celery_config(get_settings()))
        client.send_task(DISPATCH_JOB_TASK, args=[job_id])
        for trial_id, _, _ in snapshot:
            client.send_task(RUN_TRIAL_TASK, args=[trial_id])
        client.close()
        service.start_api()
        service.start_worker("worker-1")
        wait_for(
            "the stale messages to be consumed",
            lambda: (
                redis.Redis.from_url(str(service.env["HPSEARCH_BROKER_URL"])).llen(
                    get_settings().queue_name
                )
                == 0
            ),
            service,
            timeout=60,
            every=0.5,
        )
        time.sleep(3)  # a few reaper passes
        body = httpx.get(f"{service.base_url}/api/v1/jobs/{job_id}", timeout=30).json()
        assert body["status"] == "cancelled"
        assert [(t.id, t.status, t.epochs_run) for t in trials(job_id)] == snapshot
    finally:
        service.stop()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """A Redis server of this test's own (no persistence), which the test may stop and start."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(tmp_path)]
    servers = [subprocess.Popen(command, stdout=subprocess.DEVNULL)]
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)
    servers.append(command)  # type: ignore[arg-type]  # how to start it again
    yield url, servers
    for server in servers:
        if isinstance(server, subprocess.Popen) and server.poll() is None:
            server.kill()
            server.wait()


def test_redis_down_for_a_while_gives_503_and_loses_no_job(
    tmp_path: Path,
    postgres_url: str,
    private_redis: tuple[str, list[subprocess.Popen[bytes]]],
) -> None:
    redis_url, servers = private_redis
    service = cluster(tmp_path, postgres_url, redis_url, HPSEARCH_BROKER_CONNECT_TIMEOUT_S="1")
    try:
        service.start_api()
        service.start_worker("worker-1")
        first = submit(service, digits_spec(max_trials=4, epochs=6))
        wait_for("a trial mid-training", lambda: training_trial(first, 1), service)

        server = servers[0]
        server.send_signal(signal.SIGKILL)  # its queued messages are gone with it
        server.wait()
        started = time.monotonic()
        response = httpx.post(
            f"{service.base_url}/api/v1/jobs", json=digits_spec(max_trials=2), timeout=30
        )
        assert response.status_code == 503, response.text
        assert time.monotonic() - started < 10
        jobs = httpx.get(f"{service.base_url}/api/v1/jobs", timeout=30).json()
        assert [j["id"] for j in jobs["items"]] == [first]  # the refused one left no row
        time.sleep(6)  # the running trial ends meanwhile; its next messages cannot be sent

        servers.append(subprocess.Popen(servers[1], stdout=subprocess.DEVNULL))  # type: ignore[arg-type]
        second = wait_for(
            "submissions to be accepted again",
            lambda: (
                (
                    r := httpx.post(
                        f"{service.base_url}/api/v1/jobs",
                        json=digits_spec(max_trials=2),
                        timeout=30,
                    )
                ).status_code
                == 202
                and r.json()["id"]
            ),
            service,
            timeout=30,
            every=0.5,
        )
        for job_id, expected in ((first, 4), (second, 2)):
            final = wait_final(job_id, service, timeout=120)
            rows = trials(job_id)
            assert final.status is JobStatus.SUCCEEDED, final.error
            assert [t.number for t in rows] == list(range(expected))
            assert all(t.status is TrialStatus.COMPLETED for t in rows)
    finally:
        service.stop()
