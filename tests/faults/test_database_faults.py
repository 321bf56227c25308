"""Database faults met by the whole service (API + two workers + Redis) on a throwaway PostgreSQL
cluster the test starts itself: restarts mid-search, outages longer than a lease, a frozen
holder of a job's lock, and a worker told to stop while the database is away."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from db.models import JobStatus, TrialStatus
from tests.db.helpers import epochs as epochs_of
from tests.e2e.service import Service, session_processes
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
from tests.pg_cluster import ThrowawayCluster

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(400)]


@pytest.fixture
def database(throwaway_postgres: ThrowawayCluster) -> ThrowawayCluster:
    """The test's own cluster (tests/conftest.py), also this process's configured database."""
    return throwaway_postgres


@pytest.fixture
def service(tmp_path: Path, database: ThrowawayCluster, redis_url: str) -> Iterator[Service]:
    """API and two workers; a silent lock holder is cut after 3 s (a search step after 6 s), a
    lock wait after 1 s."""
    service = cluster(
        tmp_path,
        database.url,
        redis_url,
        HPSEARCH_DB_IDLE_IN_TRANSACTION_TIMEOUT_S="3",
        HPSEARCH_SEARCH_STEP_TIMEOUT_S="6",
        HPSEARCH_DB_LOCK_TIMEOUT_S="1",
    )
    try:
        service.start_api()
        service.start_worker("worker-1")
        service.start_worker("worker-2")
        yield service
    finally:
        service.stop()


def _check_every_trial_once(job_id: str, expected: int, epochs: int) -> None:
    """The job succeeded; its trials ran once each (no attempt counted), epochs not doubled."""
    rows = trials(job_id)
    final = job(job_id)
    assert final.status is JobStatus.SUCCEEDED, final.error
    assert [t.number for t in rows] == list(range(expected))
    assert [(t.status, t.attempts) for t in rows] == [(TrialStatus.COMPLETED, 1)] * expected, [
        (t.number, t.status, t.attempts, t.failure_reason) for t in rows
    ]
    for t in rows:
        assert epochs_of(t.id) == [(0, e) for e in range(epochs)], t.number


def test_restarts_mid_search_fail_no_trial_and_no_job(
    service: Service, database: ThrowawayCluster
) -> None:
    job_id = submit(service, digits_spec(max_trials=6, epochs=6))
    for _ in range(3):
        wait_for("a trial mid-training", lambda: training_trial(job_id, 1), service, timeout=120)
        database.restart(down_s=1.5)
    wait_final(job_id, service, timeout=240)
    _check_every_trial_once(job_id, 6, 6)


def test_outages_longer_than_a_lease_count_no_attempt(
    service: Service, database: ThrowawayCluster
) -> None:
    job_id = submit(service, digits_spec(max_trials=2, epochs=60))
    for _ in range(3):
        wait_for("a trial mid-training", lambda: training_trial(job_id, 1), service, timeout=120)
        database.restart(down_s=8)  # twice the lease (stale after 4 s)
    wait_final(job_id, service, timeout=240)
    _check_every_trial_once(job_id, 2, 60)
    assert "leases get one period of grace" in service.logs()


def _lock_holder_training(database: ThrowawayCluster, job_id: str) -> tuple[int, int] | None:
    """``(pool pid, trial id)`` of a worker process that holds a job's row lock, silent in its
    transaction (it folds results into the search), while it trains a trial of ``job_id``."""
    admin = create_engine(database.url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            names = conn.execute(
                text(
                    "SELECT a.application_name FROM pg_stat_activity a JOIN pg_locks l "
                    "ON l.pid = a.pid AND l.relation = 'jobs'::regclass "
                    "WHERE a.state = 'idle in transaction' AND l.mode = 'RowShareLock'"
                )
            ).scalars()
            pids = [int(n.rsplit(":", 1)[1]) for n in names if n.startswith("hpsearch ")]
    finally:
        admin.dispose()
    for pid in pids:
        for t in trials(job_id):
            if t.status is TrialStatus.RUNNING and str(t.worker).endswith(f":{pid}"):
                return pid, t.id
    return None


def _freeze_lock_holder(
    service: Service, database: ThrowawayCluster, job_id: str
) -> tuple[int, int]:
    """Freeze (SIGSTOP) a worker process inside its transaction, holding a job's lock, while
    it trains a trial; ``(pid, trial id)``. A trial of a few tenths of a second may end between
    the look and the signal: then the process is let go and another moment is taken."""
    for _ in range(5):
        pid, victim = wait_for(
            "a worker holding a job's lock while it trains",
            lambda: _lock_holder_training(database, job_id),
            service,
            timeout=180,
            every=0.005,
        )
        os.kill(pid, signal.SIGSTOP)
        time.sleep(0.2)  # a commit already sent lands now
        if next(t for t in trials(job_id) if t.id == victim).status is TrialStatus.RUNNING:
            return pid, victim
        os.kill(pid, signal.SIGCONT)
    raise AssertionError("no worker was caught holding the lock mid-trial")


def test_a_frozen_lock_holder_stalls_no_other_job_and_writes_nothing_late(
    service: Service, database: ThrowawayCluster
) -> None:
    slow = submit(
        service,
        digits_spec(max_trials=8, epochs=2, algorithm="bayesian", num_initial_points=2),
    )
    pid, victim = _freeze_lock_holder(service, database, slow)
    frozen_at = time.monotonic()
    try:
        other = submit(service, digits_spec(max_trials=2, epochs=2))
        wait_final(other, service, timeout=120)  # another job runs to its end meanwhile
        other_s = time.monotonic() - frozen_at
        rerun = wait_for(
            "the frozen worker's trial to be run again elsewhere",
            lambda: next(
                (
                    t
                    for t in trials(slow)
                    if t.id == victim
                    and t.status is TrialStatus.COMPLETED
                    and not str(t.worker).endswith(f":{pid}")
                ),
                None,
            ),
            service,
            timeout=120,
        )
    finally:
        os.kill(pid, signal.SIGCONT)  # it wakes up, finds its lease and its session gone
    wait_final(slow, service, timeout=240)
    rows = trials(slow)
    assert [t.number for t in rows] == list(range(8))
    assert all(t.status is TrialStatus.COMPLETED for t in rows)
    time.sleep(3)  # whatever the woken process still does lands now
    final = next(t for t in trials(slow) if t.id == victim)
    assert (final.worker, final.score, final.attempts) == (rerun.worker, rerun.score, 2)
    assert epochs_of(victim) == [(0, 0), (0, 1)]
    assert other_s < 90, other_s


def test_an_idle_worker_stops_promptly_while_the_database_is_away(
    service: Service, database: ThrowawayCluster
) -> None:
    job_id = submit(service, digits_spec(max_trials=2, epochs=2))
    wait_final(job_id, service, timeout=120)
    database.stop()
    session = service.processes["worker-1"].pid
    seconds = service.terminate("worker-1", timeout=60)
    # It hung for good before (80 s+). It takes ~3-8 s, 10.9 s once in CI on a loaded machine:
    # the bound is there to catch a hang, not to time it.
    assert seconds < 20, seconds
    time.sleep(1)
    assert session_processes(session) == []
    database.start()
