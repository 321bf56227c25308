"""The reaper's queries: lost workers' trials requeued (and why), lost messages found, silent jobs
found, cancelled jobs settled, the outage marker; none waits for a row another session holds."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from db.engine import reset_engines, session_scope
from db.models import Job, JobStatus, Trial, TrialStatus
from db.repositories import jobs, recovery, trials
from db.settings import get_settings
from db.transient import is_outage, is_transient
from db.values import utcnow
from tests.db.helpers import age, claimed, job, new_job, request_cancel, trial, waiting

STALE = 60.0


def test_a_stale_lease_is_requeued_counted_and_explained(store: str) -> None:
    job_id = new_job()
    fresh, stale = claimed(job_id, "h:1:2"), claimed(job_id, "h:1:3")
    age(stale.id, heartbeat_s=STALE + 30)
    assert recovery.requeue_lost_trials(STALE, {}) == [stale.id]
    row = trial(stale.id)
    assert (row.status, row.lease, row.worker, row.attempts) == (TrialStatus.WAITING, None, None, 1)
    assert row.failure_reason.startswith("attempt 1 lost: its worker h:1:3 did not renew")
    assert trial(fresh.id).status is TrialStatus.RUNNING
    again = recovery.requeue_lost_trials(STALE, {})
    assert again == []
    reclaimed = trials.claim_trial(stale.id, "h:9:9")
    assert reclaimed is not None
    assert reclaimed.attempts == 2 and reclaimed.lost_before == row.failure_reason


def test_a_trial_running_from_before_leases_existed_is_requeued_when_stale(store: str) -> None:
    claim = claimed(new_job(), "h:1:2")
    with session_scope() as session:  # as migration 0005 leaves a trial that was running
        session.execute(update(Trial).where(Trial.id == claim.id).values(lease=None))
    age(claim.id, heartbeat_s=STALE + 30)
    assert recovery.requeue_lost_trials(STALE, {}) == [claim.id]


def test_a_dead_pool_process_is_requeued_at_once_even_while_leases_rest(store: str) -> None:
    job_id = new_job()
    dead, stale = claimed(job_id, "h:1:2"), claimed(job_id, "h:1:3")
    age(stale.id, heartbeat_s=STALE + 30)
    cause = {"h:1:2": "its pool process 2 on h exited"}
    assert recovery.requeue_lost_trials(STALE, cause, check_leases=False) == [dead.id]
    assert trial(dead.id).failure_reason == "attempt 1 lost: its pool process 2 on h exited"
    assert trial(stale.id).status is TrialStatus.RUNNING  # leases rest after an outage


def test_the_outage_marker_only_moves_forward(store: str) -> None:
    assert recovery.database_recovered_at() is None
    now = utcnow()
    recovery.note_database_recovered(now)
    recovery.note_database_recovered(now - timedelta(minutes=5))
    assert abs((recovery.database_recovered_at() - now).total_seconds()) < 1e-3  # type: ignore[operator]


def test_lost_messages_and_silent_jobs_are_found_once_per_period(store: str) -> None:
    job_id = new_job(status=JobStatus.RUNNING, heartbeat_at=utcnow() - timedelta(seconds=STALE + 1))
    (lost,) = waiting(job_id)
    age(lost, enqueued_s=STALE + 1)
    assert recovery.resend_waiting_trials(STALE) == [lost]
    assert recovery.resend_waiting_trials(STALE) == []
    silent = new_job(status=JobStatus.RUNNING, heartbeat_at=utcnow() - timedelta(seconds=STALE + 1))
    assert recovery.jobs_to_dispatch(STALE) == [silent]  # the other one has an active trial
    assert recovery.jobs_to_dispatch(STALE) == []


def test_results_left_unfolded_are_found(store: str) -> None:
    job_id = new_job(status=JobStatus.RUNNING)
    claim = claimed(job_id)
    with session_scope() as session:
        trials.record_result(
            session, claim.id, claim.lease, trials.TrialResult(TrialStatus.COMPLETED, score=0.5)
        )
    assert recovery.jobs_with_unfolded_results(STALE) == []  # just now: its worker folds it
    with session_scope() as session:
        session.execute(
            update(Trial)
            .where(Trial.id == claim.id)
            .values(finished_at=utcnow() - timedelta(seconds=STALE + 1))
        )
    assert recovery.jobs_with_unfolded_results(STALE) == [job_id]


def test_cancelled_jobs_are_settled(store: str) -> None:
    job_id = new_job(status=JobStatus.RUNNING, cancel_requested=True)
    waiting(job_id)
    assert recovery.cancelled_jobs() == [job_id]
    assert recovery.settle_cancelled_job(job_id)
    assert job(job_id).status is JobStatus.CANCELLED
    assert recovery.cancelled_jobs() == []


def test_the_reaper_never_waits_for_a_row_another_session_holds(postgres_url: str) -> None:
    """A holder of a job's lock and of its trials' rows (a frozen dispatch or result): the
    reaper's queries skip them at once instead of waiting."""
    job_id = new_job(status=JobStatus.RUNNING)
    stale = claimed(job_id, "h:1:2")
    request_cancel(job_id)
    age(stale.id, heartbeat_s=STALE + 30)
    (lost,) = waiting(job_id, first=1)
    age(lost, enqueued_s=STALE + 1)
    with session_scope() as holder:
        jobs.lock_job(holder, job_id)
        holder.execute(select(Trial.id).where(Trial.job_id == job_id).with_for_update())
        # lock_timeout would turn a wait into an error; these must not wait at all
        assert recovery.settle_cancelled_job(job_id) is False
        assert recovery.requeue_lost_trials(STALE, {}) == []
        assert recovery.resend_waiting_trials(STALE) == []
    assert recovery.requeue_lost_trials(STALE, {}) == [stale.id]
    assert recovery.settle_cancelled_job(job_id)


def test_a_lock_wait_ends_after_lock_timeout(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPSEARCH_DB_LOCK_TIMEOUT_S", "0.5")
    get_settings.cache_clear()
    reset_engines()
    job_id = new_job()
    with session_scope() as holder:
        jobs.lock_job(holder, job_id)
        with pytest.raises(Exception) as raised, session_scope() as waiter:
            jobs.lock_job(waiter, job_id)
    assert is_transient(raised.value), raised.value
    # a lock not granted in time is no outage: it must not give every lease a grace period
    assert not is_outage(raised.value)
    with session_scope() as session:
        assert session.get(Job, job_id) is not None
