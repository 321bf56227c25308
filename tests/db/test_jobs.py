"""Jobs as storage keeps them: the lock, counters and the best trial in both directions, settling
cancelled and timed-out jobs, the end of a search. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest

from db.engine import session_scope
from db.models import JobStatus, TrialCheckpoint, TrialStatus
from db.repositories import artifacts, jobs, leaderboard, trials
from db.repositories.trials import TrialResult
from db.values import utcnow
from tests.db.helpers import claimed, job, new_job, request_cancel, trial, waiting


def _finish(job_id: str, status: TrialStatus, score: float | None) -> int:
    claim = claimed(job_id)
    with session_scope() as session:
        assert trials.record_result(session, claim.id, claim.lease, TrialResult(status, score))
    return claim.number


@pytest.mark.parametrize(("direction", "best"), [("max", 0.9), ("min", 0.2)])
def test_counters_and_the_best_trial_follow_the_direction(
    store: str, direction: str, best: float
) -> None:
    job_id = new_job(direction)
    scores = {}
    for score in (0.5, 0.9, 0.2):
        scores[_finish(job_id, TrialStatus.COMPLETED, score)] = score
    _finish(job_id, TrialStatus.DIVERGED, None)
    _finish(job_id, TrialStatus.FAILED, None)
    waiting(job_id, 1, first=5)
    with session_scope() as session:
        row = jobs.lock_job(session, job_id)
        assert row is not None
        jobs.refresh_counters(session, row)
    saved = job(job_id)
    assert (saved.trials_completed, saved.trials_diverged, saved.trials_failed) == (3, 1, 1)
    assert saved.best_score == best
    assert scores[saved.best_trial_number] == best


def test_the_best_trial_ties_go_to_the_first(store: str) -> None:
    job_id = new_job("max")
    first = _finish(job_id, TrialStatus.COMPLETED, 0.7)
    _finish(job_id, TrialStatus.COMPLETED, 0.7)
    with session_scope() as session:
        row = jobs.lock_job(session, job_id)
        assert leaderboard.best_completed(session, row) == (first, 0.7)  # type: ignore[arg-type]


def test_a_cancelled_job_cancels_its_waiting_trials_and_ends_when_none_runs(store: str) -> None:
    job_id = new_job()
    (waiting_id,) = waiting(job_id)
    running = claimed(job_id)
    request_cancel(job_id)
    with session_scope() as session:
        row = jobs.lock_job(session, job_id)
        assert jobs.settle_job(session, row)  # type: ignore[arg-type]
    assert trial(waiting_id).status is TrialStatus.CANCELLED
    assert job(job_id).status is JobStatus.QUEUED  # a trial still runs: it ends the job itself
    with session_scope() as session:
        trials.record_result(session, running.id, running.lease, TrialResult(TrialStatus.CANCELLED))
        row = jobs.lock_job(session, job_id)
        assert jobs.settle_job(session, row)  # type: ignore[arg-type]
    assert job(job_id).status is JobStatus.CANCELLED


def test_a_job_past_its_time_limit_ends_with_what_it_completed(store: str) -> None:
    long_ago = utcnow() - timedelta(hours=1)
    job_id = new_job(spec={"search": {"time_limit_s": 60}}, started_at=long_ago)
    _finish(job_id, TrialStatus.COMPLETED, 0.8)
    (late,) = waiting(job_id, first=1)
    with session_scope() as session:
        row = jobs.lock_job(session, job_id)
        assert jobs.settle_job(session, row)  # type: ignore[arg-type]
    assert trial(late).status is TrialStatus.CANCELLED
    ended = job(job_id)
    assert ended.status is JobStatus.SUCCEEDED and ended.error is None


def test_the_end_of_a_search_ranks_models_closes_trials_and_drops_checkpoints(store: str) -> None:
    job_id = new_job("min", spec={"search": {"top_k": 2}})
    numbers = [_finish(job_id, TrialStatus.COMPLETED, s) for s in (0.3, 0.1)]
    stuck = claimed(job_id)
    payload = artifacts.ArtifactPayload(b"model", "0" * 64, {})
    with session_scope() as session:
        row = jobs.lock_job(session, job_id)
        for number, score in zip(numbers, (0.3, 0.1), strict=True):
            artifacts.store_model(session, row, number, score, payload, top_k=2)  # type: ignore[arg-type]
        artifacts.store_checkpoint(session, job_id, numbers[0], b"weights")
    jobs.finish_job(job_id, JobStatus.SUCCEEDED)
    ended = job(job_id)
    assert ended.status is JobStatus.SUCCEEDED and ended.finished_at is not None
    assert trial(stuck.id).status is TrialStatus.FAILED
    with session_scope() as session:
        ranked = artifacts.artifact_ranking(session, ended)
        assert [(a.rank, a.trial_number) for a in ranked] == [(1, numbers[1]), (2, numbers[0])]
        assert session.query(TrialCheckpoint).count() == 0
    jobs.finish_job(job_id, JobStatus.FAILED, "too late")  # a final job stays as it ended
    assert job(job_id).status is JobStatus.SUCCEEDED


def test_the_end_of_a_search_keeps_only_its_top_k_models(store: str) -> None:
    """Two workers storing models at once may each keep one more for a moment."""
    job_id = new_job("max", spec={"search": {"top_k": 1}})
    payload = artifacts.ArtifactPayload(b"model", "0" * 64, {})
    with session_scope() as session:
        row = jobs.lock_job(session, job_id)
        for number, score in ((0, 0.3), (1, 0.9)):
            artifacts.store_model(session, row, number, score, payload, top_k=2)  # type: ignore[arg-type]
    jobs.finish_job(job_id, JobStatus.SUCCEEDED)
    with session_scope() as session:
        assert [
            (a.rank, a.trial_number) for a in artifacts.artifact_ranking(session, job(job_id))
        ] == [(1, 1)]


def test_a_search_with_nothing_completed_fails_saying_why(store: str) -> None:
    job_id = new_job()
    _finish(job_id, TrialStatus.DIVERGED, None)
    with session_scope() as session:
        row = jobs.lock_job(session, job_id)
        jobs.end_search(session, row)  # type: ignore[arg-type]
    ended = job(job_id)
    assert ended.status is JobStatus.FAILED
    assert ended.error == "no trial completed (0 failed, 1 diverged)"


def test_owned_jobs_and_ids_that_cannot_exist(store: str) -> None:
    job_id = new_job()
    with session_scope() as session:
        assert jobs.get_owned_job(session, job_id, "local") is not None
        assert jobs.get_owned_job(session, job_id, "someone-else") is None
        assert jobs.get_owned_job(session, "x\x00" * 20, "local") is None
        assert jobs.delete_final_job(session, job_id) is False  # not final


def test_the_split_rows_are_recorded_once_and_deleted_with_the_job(store: str) -> None:
    job_id = new_job()
    first = jobs.SplitRows(4, bytes([3, 0, 0, 0, 1, 0, 0, 0]), bytes([2, 0, 0, 0]))
    jobs.record_dataset_info(job_id, {"rows_total": 4}, first)
    jobs.record_dataset_info(job_id, {"rows_total": 4}, jobs.SplitRows(4, b"", b""))  # later
    with session_scope() as session:
        split = jobs.get_split(session, job_id)
        assert split is not None and (split.train_rows, split.validation_rows) == (
            first.train,
            first.validation,
        )
        jobs.delete_job(session, job_id)
    with session_scope() as session:
        assert jobs.get_split(session, job_id) is None
