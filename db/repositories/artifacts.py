"""Stored models (a job's top-k, in Keras's ``.keras`` format) and Hyperband checkpoints.

There is ONE ranking of a job's stored models (``ranked``): the ranks given when the job ended
first, then the best score, missing scores last on every database, ties by trial number. The
pruning of the top-k, the ranks written at the end and the API's ``rank`` all read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, delete, select, update
from sqlalchemy.orm import Session, defer

from db.engine import session_scope
from db.models import Job, ModelArtifact, TrialCheckpoint
from db.transient import retried
from db.values import json_safe
from search_spaces.direction import Direction


@dataclass
class ArtifactPayload:
    """A trained model as a worker hands it over."""

    content: bytes
    sha256: str
    signature: dict[str, Any]


def ranked(job_id: str, direction: Direction) -> Select[tuple[ModelArtifact]]:
    """The job's stored models, best first (content deferred)."""
    return (
        select(ModelArtifact)
        .where(ModelArtifact.job_id == job_id)
        .options(defer(ModelArtifact.content))
        .order_by(
            ModelArtifact.rank.is_(None),
            ModelArtifact.rank,
            ModelArtifact.score.is_(None),
            direction.order(ModelArtifact.score),
            ModelArtifact.trial_number,
        )
    )


def artifact_ranking(session: Session, job: Job) -> list[ModelArtifact]:
    """A job's stored models, best first, without their content loaded."""
    return list(session.scalars(ranked(job.id, job.direction)))


def artifact_by_rank(session: Session, job: Job, rank: int) -> ModelArtifact | None:
    """The job's ``rank``-th best stored model (1 = best), content deferred, or None."""
    if rank < 1:
        return None
    return session.scalars(ranked(job.id, job.direction).offset(rank - 1).limit(1)).first()


def artifact_content(session: Session, artifact_id: int) -> bytes:
    """The ``.keras`` bytes of one stored model."""
    content = session.scalar(select(ModelArtifact.content).where(ModelArtifact.id == artifact_id))
    return content or b""


@retried("read the job's stored scores")
def qualifies_for_top_k(job_id: str, score: float, direction: Direction, top_k: int) -> bool:
    """Would a completed trial with ``score`` enter the job's top-k stored models?"""
    with session_scope() as session:
        scores = [
            s
            for s in session.scalars(
                select(ModelArtifact.score).where(ModelArtifact.job_id == job_id)
            )
            if s is not None
        ]
    if len(scores) < top_k:
        return True
    return direction.better(score, direction.worst(scores))


def _replace(session: Session, row: ModelArtifact | TrialCheckpoint) -> None:
    """Store ``row`` as the only one of its kind for its (job, trial number): a re-run trial
    replaces what an earlier attempt left."""
    model = type(row)
    session.execute(
        delete(model).where(model.job_id == row.job_id, model.trial_number == row.trial_number)
    )
    session.add(row)
    session.flush()


def store_model(
    session: Session,
    job: Job,
    trial_number: int,
    score: float,
    payload: ArtifactPayload,
    top_k: int,
) -> None:
    """Keep a trial's model, then drop the stored models that fell out of the top-k."""
    _replace(
        session,
        ModelArtifact(
            job_id=job.id,
            trial_number=trial_number,
            score=score,
            size_bytes=len(payload.content),
            sha256=payload.sha256,
            signature=json_safe(payload.signature),
            content=payload.content,
        ),
    )
    prune_models(session, job, top_k)


def prune_models(session: Session, job: Job, top_k: int) -> None:
    """Drop the stored models past the ``top_k`` best."""
    drop = [row.id for row in artifact_ranking(session, job)[top_k:]]
    if drop:
        session.execute(delete(ModelArtifact).where(ModelArtifact.id.in_(drop)))


def rank_first(session: Session, job_id: str, trial_numbers: list[int]) -> None:
    """Give the models of these trials the first ranks, in this order (a confirmed search's
    best configurations by their means); ``rank_models`` then keeps that order."""
    rows = session.execute(
        select(ModelArtifact.id, ModelArtifact.trial_number).where(
            ModelArtifact.job_id == job_id, ModelArtifact.trial_number.in_(trial_numbers)
        )
    ).all()
    by_number = {r.trial_number: r.id for r in rows}
    stored = [by_number[n] for n in trial_numbers if n in by_number]
    for rank, artifact_id in enumerate(stored, start=1):
        session.execute(
            update(ModelArtifact)
            .where(ModelArtifact.id == artifact_id)
            .values(rank=rank)
            .execution_options(synchronize_session=False)
        )


def rank_models(session: Session, job: Job, top_k: int) -> None:
    """Keep the ``top_k`` best stored models and write their ranks 1..k (the job ended)."""
    prune_models(session, job, top_k)
    for rank, row in enumerate(artifact_ranking(session, job), start=1):
        session.execute(
            update(ModelArtifact)
            .where(ModelArtifact.id == row.id)
            .values(rank=rank)
            .execution_options(synchronize_session=False)
        )


def store_checkpoint(session: Session, job_id: str, trial_number: int, content: bytes) -> None:
    """Keep the weights a Hyperband trial ended with, for the trial that continues it."""
    _replace(
        session,
        TrialCheckpoint(
            job_id=job_id, trial_number=trial_number, content=content, size_bytes=len(content)
        ),
    )


@retried("read a Hyperband checkpoint")
def load_checkpoint(job_id: str, trial_number: int) -> bytes | None:
    """The weights a completed Hyperband trial ended with (None if there are none)."""
    with session_scope() as session:
        return session.execute(
            select(TrialCheckpoint.content).where(
                TrialCheckpoint.job_id == job_id, TrialCheckpoint.trial_number == trial_number
            )
        ).scalar_one_or_none()


def delete_checkpoints(session: Session, job_id: str) -> None:
    """The job ended: no trial will continue from its checkpoints."""
    session.execute(delete(TrialCheckpoint).where(TrialCheckpoint.job_id == job_id))
