"""Stored models and checkpoints: one ranking everywhere (missing scores last on both databases),
the top-k kept, a re-run trial's model replacing its earlier one. On SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import update

from db.engine import session_scope
from db.models import Job, ModelArtifact
from db.repositories import artifacts, jobs
from search_spaces.direction import Direction
from tests.db.helpers import job, new_job

PAYLOAD = artifacts.ArtifactPayload(b"model", "0" * 64, {"task": "binary"})


def _store(job_id: str, scores: dict[int, float], top_k: int) -> None:
    with session_scope() as session:
        row = session.get_one(Job, job_id)
        for number, score in scores.items():
            artifacts.store_model(session, row, number, score, PAYLOAD, top_k)  # type: ignore[arg-type]


def _ranking(job_id: str) -> list[int]:
    with session_scope() as session:
        return [a.trial_number for a in artifacts.artifact_ranking(session, job(job_id))]


@pytest.mark.parametrize(
    ("direction", "expected", "after"),
    [("max", [2, 0, 1], [2, 0, 3]), ("min", [1, 0, 2], [1, 0, 3])],
)
def test_models_rank_best_first_and_keep_only_the_top_k(
    store: str, direction: str, expected: list[int], after: list[int]
) -> None:
    job_id = new_job(direction)
    _store(job_id, {0: 0.5, 1: 0.2, 2: 0.9}, top_k=3)
    assert _ranking(job_id) == expected
    # trial 3 ties with trial 0 (the earlier ranks first) and pushes the worst one out
    _store(job_id, {3: 0.5}, top_k=3)
    assert _ranking(job_id) == after


def test_missing_scores_rank_last_on_every_database(store: str) -> None:
    for direction in ("max", "min"):
        job_id = new_job(direction)
        _store(job_id, {0: 0.5, 1: 0.7}, top_k=3)
        with session_scope() as session:
            session.execute(
                update(ModelArtifact)
                .where(ModelArtifact.job_id == job_id, ModelArtifact.trial_number == 0)
                .values(score=None)
            )
        assert _ranking(job_id) == [1, 0], direction


def test_ranks_given_at_the_end_come_first(store: str) -> None:
    job_id = new_job("max")
    _store(job_id, {0: 0.5, 1: 0.7}, top_k=2)
    with session_scope() as session:
        artifacts.rank_models(session, job(job_id), top_k=2)
        session.execute(  # a rank says more than a score once given
            update(ModelArtifact)
            .where(ModelArtifact.job_id == job_id, ModelArtifact.trial_number == 0)
            .values(rank=1)
        )
        session.execute(
            update(ModelArtifact)
            .where(ModelArtifact.job_id == job_id, ModelArtifact.trial_number == 1)
            .values(rank=2)
        )
    assert _ranking(job_id) == [0, 1]
    with session_scope() as session:
        found = artifacts.artifact_by_rank(session, job(job_id), 2)
        assert found is not None and found.trial_number == 1
        assert artifacts.artifact_by_rank(session, job(job_id), 3) is None
        assert artifacts.artifact_by_rank(session, job(job_id), 0) is None
        assert artifacts.artifact_content(session, found.id) == b"model"


def test_a_rerun_trial_replaces_its_model_and_top_k_admission(store: str) -> None:
    job_id = new_job("max")
    _store(job_id, {0: 0.5}, top_k=2)
    _store(job_id, {0: 0.6}, top_k=2)
    with session_scope() as session:
        (only,) = artifacts.artifact_ranking(session, job(job_id))
        assert only.score == 0.6
    assert artifacts.qualifies_for_top_k(job_id, 0.1, Direction.MAX, top_k=2)  # room left
    _store(job_id, {1: 0.8}, top_k=2)
    assert not artifacts.qualifies_for_top_k(job_id, 0.1, Direction.MAX, top_k=2)
    assert artifacts.qualifies_for_top_k(job_id, 0.7, Direction.MAX, top_k=2)
    assert artifacts.qualifies_for_top_k(job_id, 0.1, Direction.MIN, top_k=2)


def test_checkpoints_are_kept_per_trial_and_replaced(store: str) -> None:
    job_id = new_job()
    with session_scope() as session:
        artifacts.store_checkpoint(session, job_id, 3, b"first")
        artifacts.store_checkpoint(session, job_id, 3, b"second")
    assert artifacts.load_checkpoint(job_id, 3) == b"second"
    assert artifacts.load_checkpoint(job_id, 4) is None


def test_a_model_is_stored_while_another_session_holds_the_job(postgres_url: str) -> None:
    """The job's lock (FOR NO KEY UPDATE) does not block the foreign-key check of a model or a
    checkpoint written under the job: a worker writing its result never waits for a fold."""
    job_id = new_job("max", spec={"search": {"top_k": 2}})
    with session_scope() as holder:
        jobs.lock_job(holder, job_id)
        started = time.monotonic()
        _store(job_id, {0: 0.5}, top_k=2)
        with session_scope() as session:
            artifacts.store_checkpoint(session, job_id, 0, b"weights")
        assert time.monotonic() - started < 1  # no lock wait (lock_timeout would raise)
    assert _ranking(job_id) == [0]
