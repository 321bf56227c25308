"""Faults survived by real worker processes on PostgreSQL + Redis: kill -9 mid-trial, a poison
trial, duplicate and racing deliveries, a frozen worker losing its lease, a warm shutdown."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from celery import Celery

from db.broker import DISPATCH_JOB_TASK, RUN_TRIAL_TASK, celery_config
from db.models import JobStatus, TrialStatus
from db.settings import get_settings
from tests.db.helpers import epochs as epochs_of
from tests.e2e.service import Service
from tests.faults.helpers import (
    cluster,
    digits_spec,
    job,
    pool_pid,
    submit,
    training_trial,
    trials,
    wait_final,
    wait_for,
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture
def service(tmp_path: Path, postgres_url: str, redis_url: str) -> Iterator[Service]:
    service = cluster(tmp_path, postgres_url, redis_url)
    try:
        service.start_api()
        yield service
    finally:
        service.stop()


def _check_complete(job_id: str, expected: int, epochs: int) -> None:
    """Exactly the trials asked for, numbered 0..n-1, each trained once, epochs not doubled."""
    final = job(job_id)
    rows = trials(job_id)
    assert final.status is JobStatus.SUCCEEDED, final.error
    assert [t.number for t in rows] == list(range(expected))
    assert all(t.status is TrialStatus.COMPLETED for t in rows), [
        (t.number, t.status, t.failure_reason, t.attempts) for t in rows
    ]
    for t in rows:
        assert epochs_of(t.id) == [(0, e) for e in range(epochs)], t.number
    assert final.trials_completed == expected


def test_kill_9_mid_trial_reruns_that_trial_elsewhere(service: Service) -> None:
    service.start_worker("worker-1")
    service.start_worker("worker-2")
    job_id = submit(service, digits_spec(max_trials=4, epochs=20))
    victim = wait_for("a trial mid-training", lambda: training_trial(job_id, 2), service)
    os.kill(pool_pid(victim), signal.SIGKILL)

    wait_final(job_id, service)
    _check_complete(job_id, 4, 20)
    rerun = next(t for t in trials(job_id) if t.id == victim.id)
    assert rerun.number == victim.number and rerun.hyperparameters == victim.hyperparameters
    assert rerun.attempts == 2 and rerun.worker != victim.worker
    assert sum(t.attempts for t in trials(job_id)) == 5


def test_poison_trial_is_failed_after_bounded_attempts_and_the_job_goes_on(
    service: Service,
) -> None:
    service.env["HPSEARCH_MAX_TRIAL_ATTEMPTS"] = "2"
    service.env["HPSEARCH_TEST_POISON_TRIAL"] = "1"
    service.start_worker("worker-1")
    job_id = submit(service, digits_spec(max_trials=3, epochs=2))
    final = wait_final(job_id, service, timeout=150)
    rows = trials(job_id)
    assert final.status is JobStatus.SUCCEEDED, final.error
    assert [t.number for t in rows] == [0, 1, 2]
    poison = rows[1]
    assert poison.status is TrialStatus.FAILED and poison.attempts == 3
    # a real loss each time, and the reason says which: the pool process exited
    assert re.fullmatch(
        r"its worker was lost 2 times while training this trial \(max_trial_attempts=2\); "
        r"attempt 2 lost: its pool process \d+ on .+ exited",
        poison.failure_reason or "",
    ), poison.failure_reason
    assert [t.status for t in (rows[0], rows[2])] == [TrialStatus.COMPLETED] * 2
    assert (final.trials_failed, final.trials_completed) == (1, 2)


def test_duplicate_and_racing_deliveries_run_each_trial_once(service: Service) -> None:
    settings = get_settings()
    client = Celery("fault-test", set_as_current=False)
    client.conf.update(celery_config(settings))
    service.start_worker("worker-1")
    service.start_worker("worker-2")
    job_id = submit(service, digits_spec(max_trials=6, epochs=2))
    for _ in range(3):  # the submission message, redelivered
        client.send_task(DISPATCH_JOB_TASK, args=[job_id])
    sent: set[int] = set()
    deadline = time.monotonic() + 120
    while not job(job_id).status.is_final and time.monotonic() < deadline:
        for t in trials(job_id):
            if t.id not in sent:  # every trial message, delivered three times
                sent.add(t.id)
                for _ in range(2):
                    client.send_task(RUN_TRIAL_TASK, args=[t.id])
        time.sleep(0.1)
    client.close()
    wait_final(job_id, service)
    _check_complete(job_id, 6, 2)
    assert len(sent) == 6 and all(t.attempts == 1 for t in trials(job_id))


def test_frozen_worker_loses_its_lease_and_records_nothing(service: Service) -> None:
    service.start_worker("worker-1")
    service.start_worker("worker-2")
    job_id = submit(service, digits_spec(max_trials=3, epochs=20))
    victim = wait_for("a trial mid-training", lambda: training_trial(job_id, 1), service)
    pid = pool_pid(victim)
    os.kill(pid, signal.SIGSTOP)  # alive, but silent: its heartbeat goes stale
    try:
        taken = wait_for(
            "the stale trial to be taken over",
            lambda: next(
                (
                    t
                    for t in trials(job_id)
                    if t.id == victim.id and t.attempts == 2 and t.worker != victim.worker
                ),
                None,
            ),
            service,
            timeout=60,
        )
        assert taken.status in (TrialStatus.RUNNING, TrialStatus.COMPLETED)
    finally:
        os.kill(pid, signal.SIGCONT)  # it wakes up, sees it lost the lease, stops
    wait_final(job_id, service)
    _check_complete(job_id, 3, 20)
    assert next(t for t in trials(job_id) if t.id == victim.id).worker != victim.worker


def test_warm_shutdown_hands_the_running_trial_back_at_once(service: Service) -> None:
    service.start_worker("worker-1")
    job_id = submit(service, digits_spec(max_trials=2, epochs=30))
    victim = wait_for("a trial mid-training", lambda: training_trial(job_id, 1), service)
    proc = service.processes["worker-1"]
    stopped_at = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)  # warm shutdown of the worker's main process only
    back = wait_for(
        "the trial back in the queue",
        lambda: next(
            (t for t in trials(job_id) if t.id == victim.id and t.status == "waiting"), None
        ),
        service,
        timeout=20,
        every=0.05,
    )
    handed_back_s = time.monotonic() - stopped_at
    assert back.attempts == 0 and back.epochs_run == 0 and back.worker is None
    proc.wait(timeout=30)
    exited_s = time.monotonic() - stopped_at
    service.processes.pop("worker-1")
    print(f"warm shutdown: trial back in queue after {handed_back_s:.2f} s, exit {exited_s:.2f} s")
    assert handed_back_s < 5 and exited_s < 20, (handed_back_s, exited_s)

    service.start_worker("worker-2")
    wait_final(job_id, service)
    _check_complete(job_id, 2, 30)
    assert next(t for t in trials(job_id) if t.id == victim.id).attempts == 1
