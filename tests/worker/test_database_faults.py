"""A database that blinks never fails a trial or a job: real trials (in-process) while the
dispatcher's backend is terminated, while a throwaway PostgreSQL cluster restarts, and while it
stays away past the retry budget; a reaper that retries through a restart takes back no live
trial."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from db.engine import session_scope
from db.models import JobStatus, TrialStatus
from db.repositories import jobs, recovery
from db.repositories import trials as trial_store
from db.settings import get_settings
from db.transient import retry_budget
from tests.conftest import POSTGRES_ADMIN_URL
from tests.db.helpers import age, claimed, new_job, trial
from tests.pg_cluster import ThrowawayCluster
from tests.worker.helpers import create_job, drive, get_epochs, get_job, get_trials, tiny_spec
from worker import lease
from worker.attempt import attempt_trial
from worker.dispatcher import dispatch
from worker.reaper import Reaper

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(throwaway_postgres: ThrowawayCluster) -> ThrowawayCluster:
    """The test's own cluster (tests/conftest.py)."""
    return throwaway_postgres


def _slow_spec(epochs: int = 6) -> dict[str, Any]:
    spec = tiny_spec(max_trials=1)
    spec["training"].update(
        {"epochs": epochs, "batch_size": 8, "early_stopping": {"enabled": False}}
    )
    return spec


def test_dispatch_survives_its_backend_terminated_while_it_waits_for_the_job_lock(
    postgres_url: str,
) -> None:
    job_id = create_job(tiny_spec(max_trials=3))
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    sent: list[list[int]] = []
    with session_scope() as holder:
        jobs.lock_job(holder, job_id)
        dispatcher = threading.Thread(target=lambda: sent.append(dispatch(job_id)))
        dispatcher.start()
        waiting_pid = None
        deadline = time.monotonic() + 30
        while waiting_pid is None and time.monotonic() < deadline:
            with admin.connect() as conn:
                waiting_pid = conn.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND query LIKE '%FOR NO KEY UPDATE%' AND datname = :db"
                    ),
                    {"db": postgres_url.rsplit("/", 1)[1]},
                ).scalar()
            time.sleep(0.05)
        assert waiting_pid is not None, "the dispatcher never waited for the lock"
        with admin.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": waiting_pid})
    dispatcher.join(timeout=60)
    admin.dispose()
    assert sent and len(sent[0]) == 3
    job = get_job(job_id)
    assert job.status is JobStatus.RUNNING and job.error is None
    assert [t.status for t in get_trials(job_id)] == [TrialStatus.WAITING] * 3


def test_a_trial_trains_through_a_database_restart(
    cluster: ThrowawayCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = create_job(_slow_spec())
    original = trial_store.record_epoch
    restarts: list[threading.Thread] = []

    def restart_after_second_epoch(*args: Any, **kwargs: Any) -> bool:
        recorded = original(*args, **kwargs)
        if args[3] == 1 and not restarts:  # the epoch index
            restarts.append(threading.Thread(target=cluster.restart, kwargs={"down_s": 2.0}))
            restarts[0].start()
            time.sleep(0.2)  # the next writes meet a server going down
        return recorded

    monkeypatch.setattr(trial_store, "record_epoch", restart_after_second_epoch)
    drive(job_id)
    restarts[0].join()
    job, (trial,) = get_job(job_id), get_trials(job_id)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert (trial.status, trial.attempts, trial.failure_reason) == (TrialStatus.COMPLETED, 1, None)
    assert [e.epoch for e in get_epochs(job_id)] == list(range(6))


def test_an_outage_past_the_budget_hands_the_trial_back_uncounted(
    cluster: ThrowawayCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPSEARCH_DB_RETRY_BUDGET_S", "1")
    get_settings.cache_clear()
    job_id = create_job(_slow_spec())
    (trial_id,) = dispatch(job_id)
    original = trial_store.record_epoch
    sent: list[list[int]] = []

    def stop_after_second_epoch(*args: Any, **kwargs: Any) -> bool:
        recorded = original(*args, **kwargs)
        if args[3] == 1:
            cluster.stop()
        return recorded

    monkeypatch.setattr(trial_store, "record_epoch", stop_after_second_epoch)
    monkeypatch.setattr("worker.messages.send_trials", lambda ids: sent.append(list(ids)))
    assert attempt_trial(trial_id, "w:1:2") == []  # not recorded, not failed: handed back later
    assert lease.pending_handbacks() + len(sent) >= 1
    cluster.start()
    deadline = time.monotonic() + 30
    while not sent and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sent == [[trial_id]], "the trial was not handed back once the database returned"
    (trial,) = get_trials(job_id)
    assert (trial.status, trial.attempts, trial.lease) == (TrialStatus.WAITING, 0, None)
    monkeypatch.setattr(trial_store, "record_epoch", original)
    assert attempt_trial(trial_id, "w:1:3") == []
    job, (trial,) = get_job(job_id), get_trials(job_id)
    assert job.status is JobStatus.SUCCEEDED
    assert (trial.status, trial.attempts) == (TrialStatus.COMPLETED, 1)
    assert [e.epoch for e in get_epochs(job_id)] == list(range(6))


def test_a_reaper_pass_that_retries_through_a_restart_takes_back_no_live_lease(
    cluster: ThrowawayCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pass meets the outage in its first query and succeeds once the server is back: no
    pass failed, yet the beats of live workers failed all along and their leases look stale."""
    monkeypatch.setenv("HPSEARCH_STALE_AFTER_S", "4")
    monkeypatch.setenv("HPSEARCH_HEARTBEAT_INTERVAL_S", "1")
    get_settings.cache_clear()
    claim = claimed(new_job(), "elsewhere:1:2")
    age(claim.id, heartbeat_s=10)  # a live worker whose beats met the outage
    reaper = Reaper(interval_s=1)
    cluster.stop()
    starting = threading.Timer(1.0, cluster.start)
    starting.start()
    try:
        with retry_budget(60):
            report = reaper.pass_once()
    finally:
        starting.join()
    assert report is not None, "the pass gave up instead of retrying through the restart"
    assert (report.leases_checked, report.requeued) == (False, [])
    assert recovery.database_recovered_at() is not None
    row = trial(claim.id)
    assert (row.status, row.lease, row.attempts) == (TrialStatus.RUNNING, claim.lease, 1)
    # The next pass, with no blink, still grants the grace: from the marker every reaper reads.
    calm = reaper.pass_once()
    assert calm is not None and (calm.leases_checked, calm.requeued) == (False, [])
    time.sleep(4.5)  # one lease period later a silent lease means a lost worker again
    after = reaper.pass_once()
    assert after is not None and (after.leases_checked, after.requeued) == (True, [claim.id])
