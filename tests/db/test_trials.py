"""A worker's attempt, as storage keeps it: claim races, the lease, heartbeats, epochs, the result
under the lease, the hand-back. Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

from sqlalchemy import update

from db.engine import session_scope
from db.models import Trial, TrialStatus
from db.repositories import jobs, search, trials
from db.repositories.trials import Control, TrialResult
from tests.db.helpers import claimed, epochs, new_job, record, trial, waiting


def test_a_claim_is_a_compare_and_set_with_a_fresh_lease(store: str) -> None:
    job_id = new_job()
    (trial_id,) = waiting(job_id)
    first = trials.claim_trial(trial_id, "a:1:2")
    assert first is not None and first.attempts == 1 and len(first.lease) == 32
    assert first.number == 0 and first.hyperparameters == {"units": 8}
    assert trials.claim_trial(trial_id, "b:1:2") is None  # a duplicate delivery
    row = trial(trial_id)
    assert (row.status, row.worker, row.lease) == (TrialStatus.RUNNING, "a:1:2", first.lease)
    assert row.heartbeat_at is not None and row.started_at is not None


def test_a_cancelled_jobs_waiting_trial_is_never_claimed(store: str) -> None:
    job_id = new_job(cancel_requested=True)
    (trial_id,) = waiting(job_id, 1)
    assert trials.claim_trial(trial_id, "w:1:2") is None
    assert trial(trial_id).status is TrialStatus.WAITING  # settling the job cancels it
    assert trial(trial_id).started_at is None


def test_racing_claims_have_one_winner(store: str) -> None:
    job_id = new_job()
    (trial_id,) = waiting(job_id)
    results: list[object] = []
    barrier = threading.Barrier(8)

    def claim(n: int) -> None:
        barrier.wait()
        results.append(trials.claim_trial(trial_id, f"w:{n}:{n}"))

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and trial(trial_id).lease == winners[0].lease  # type: ignore[attr-defined]


def test_a_claim_whose_commit_answer_was_lost_is_recognised_on_retry(store: str) -> None:
    job_id = new_job()
    (trial_id,) = waiting(job_id)
    first = trials._claim(trial_id, "a:1:2", "f" * 32)
    again = trials._claim(trial_id, "a:1:2", "f" * 32)  # the same unit of work, run again
    assert first == again and again is not None and again.attempts == 1
    assert trials._claim(trial_id, "a:1:2", "e" * 32) is None  # another lease is not ours


def test_heartbeats_follow_the_lease(store: str) -> None:
    job_id = new_job()
    claim = claimed(job_id)
    before = trial(claim.id).heartbeat_at
    assert trials.heartbeat(claim.id, claim.lease)
    assert trial(claim.id).heartbeat_at >= before
    assert not trials.heartbeat(claim.id, "x" * 32)
    with session_scope() as session:
        assert jobs.request_job_cancel(session, job_id) is False  # queued, not running


def test_epochs_are_written_only_under_the_lease_and_never_twice(store: str) -> None:
    job_id = new_job()
    claim = claimed(job_id)
    assert record(claim, 0) and record(claim, 1)
    assert record(claim, 1)  # a try whose answer was lost, run again: no second row
    assert epochs(claim.id) == [(0, 0), (0, 1)] and trial(claim.id).epochs_run == 2
    stale = claim.__class__(**{**claim.__dict__, "lease": "0" * 32})
    assert not record(stale, 2)
    assert epochs(claim.id) == [(0, 0), (0, 1)]


def test_a_result_is_written_only_under_the_lease_it_claimed(store: str) -> None:
    job_id = new_job()
    claim = claimed(job_id)
    result = TrialResult(TrialStatus.COMPLETED, score=0.9, best_epoch=1, metrics={"a": 1.0})
    with session_scope() as session:
        assert not trials.record_result(session, claim.id, "0" * 32, result)
    assert trial(claim.id).status is TrialStatus.RUNNING
    with session_scope() as session:
        assert trials.record_result(session, claim.id, claim.lease, result)
    row = trial(claim.id)
    assert (row.status, row.score, row.reported) == (TrialStatus.COMPLETED, 0.9, False)
    with session_scope() as session:  # a second, late result finds no running lease...
        assert not trials.record_result(session, claim.id, claim.lease, result)
        # ...but knows its own result is the one recorded (a commit whose answer was lost)
        assert trials.result_recorded(session, claim.id, claim.lease)
        assert not trials.result_recorded(session, claim.id, "0" * 32)


def test_results_wait_to_be_folded_into_the_search_once(store: str) -> None:
    job_id = new_job()
    first, second = claimed(job_id), claimed(job_id)
    assert not search.has_unreported(job_id)
    with session_scope() as session:
        trials.record_result(session, second.id, second.lease, TrialResult(TrialStatus.FAILED))
        trials.record_result(
            session, first.id, first.lease, TrialResult(TrialStatus.COMPLETED, score=0.5)
        )
    assert search.has_unreported(job_id)
    with session_scope() as session:
        ended = search.unreported(session, job_id)
        assert [(t.number, t.status, t.score) for t in ended] == [
            (second.number, TrialStatus.FAILED, None),
            (first.number, TrialStatus.COMPLETED, 0.5),
        ]
        search.mark_reported(session, [t.id for t in ended])
    assert not search.has_unreported(job_id)


def test_one_session_at_a_time_changes_a_jobs_search(postgres_url: str) -> None:
    job_id = new_job()
    with session_scope() as first:
        assert jobs.try_lock_search(first, job_id)
        with session_scope() as second:
            assert not jobs.try_lock_search(second, job_id)  # at once, no wait
            assert jobs.try_lock_search(second, new_job())  # other jobs are free
    with session_scope() as third:  # released with the first transaction
        assert jobs.try_lock_search(third, job_id)


def test_a_non_finite_score_is_stored_as_missing(store: str) -> None:
    claim = claimed(new_job())
    with session_scope() as session:
        trials.record_result(
            session, claim.id, claim.lease, TrialResult(TrialStatus.DIVERGED, score=float("nan"))
        )
    assert trial(claim.id).score is None


def test_a_hand_back_returns_the_trial_without_counting_the_attempt(store: str) -> None:
    job_id = new_job()
    claim = claimed(job_id)
    record(claim, 0)
    assert not trials.release_trial(claim.id, "0" * 32)
    assert trials.release_trial(claim.id, claim.lease)
    row = trial(claim.id)
    assert (row.status, row.attempts, row.worker, row.lease) == (TrialStatus.WAITING, 0, None, None)
    assert row.epochs_run == 0 and epochs(claim.id) == []
    assert not trials.release_trial(claim.id, claim.lease)  # once only
    again = trials.claim_trial(claim.id, "b:1:2")
    assert again is not None and again.attempts == 1 and again.lease != claim.lease


def test_active_trials_and_closing_them(store: str) -> None:
    job_id = new_job()
    waiting(job_id, 2)
    claimed(job_id)
    with session_scope() as session:
        assert search.active_trials(session, job_id) == 3
        assert search.active_trials(session, job_id, TrialStatus.RUNNING) == 1
        assert search.in_flight(session, job_id) == 3
        search.cancel_waiting(session, job_id, "job cancelled")
        assert search.active_trials(session, job_id) == 1
        search.close_active(session, job_id, TrialStatus.FAILED, "job failed")
        assert search.active_trials(session, job_id) == 0
        assert search.in_flight(session, job_id) == 0  # closed by the job's end: nothing to fold


def test_a_result_not_folded_yet_is_still_in_flight(store: str) -> None:
    job_id = new_job()
    claim = claimed(job_id)
    with session_scope() as session:
        trials.record_result(
            session, claim.id, claim.lease, TrialResult(TrialStatus.COMPLETED, 0.5)
        )
        assert search.active_trials(session, job_id) == 0
        assert search.in_flight(session, job_id) == 1  # the search has not learnt it yet
        search.mark_reported(session, [claim.id])
        assert search.in_flight(session, job_id) == 0


def test_an_epoch_record_says_what_to_do_next(store: str) -> None:
    job_id = new_job()
    claim = claimed(job_id)
    loss = {"loss": 1.0}
    assert trials.record_epoch(claim.id, claim.lease, 0, 0, loss, None, 0.1) is Control.GO_ON
    trials.request_release("host:1:")
    assert trials.record_epoch(claim.id, claim.lease, 0, 1, loss, None, 0.1) is Control.RELEASE
    with session_scope() as session:
        jobs.cancel_queued_job(session, job_id)
    assert trials.record_epoch(claim.id, claim.lease, 0, 2, loss, None, 0.1) is Control.CANCEL
    lost = trials.record_epoch(claim.id, "0" * 32, 0, 3, loss, None, 0.1)
    assert lost is Control.LEASE_LOST and epochs(claim.id) == [(0, 0), (0, 1), (0, 2)]


def test_a_rerun_starts_without_the_earlier_attempts_epochs(store: str) -> None:
    claim = claimed(new_job())
    record(claim, 0)
    record(claim, 1)
    with session_scope() as session:  # taken back, as the reaper does
        session.execute(
            update(Trial)
            .where(Trial.id == claim.id)
            .values(status=TrialStatus.WAITING, lease=None, worker=None)
        )
    again = trials.claim_trial(claim.id, "b:1:2")
    assert again is not None and again.attempts == 2
    assert epochs(claim.id) == [] and trial(claim.id).epochs_run == 0
