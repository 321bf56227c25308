"""A job's trials counted and ranked: its counters, its best trial, the API's leaderboard."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, selectinload

from db.models import Job, Trial, TrialStatus

#: leaderboard sort keys a client may ask for, and the column each one orders by.
TRIAL_SORT_COLUMNS: dict[str, Any] = {
    "score": Trial.score,
    "number": Trial.number,
    "duration_s": Trial.duration_s,
    "epochs_run": Trial.epochs_run,
    "started_at": Trial.started_at,
}

Order = Literal["asc", "desc"]


def counts_by_status(session: Session, job_id: str) -> dict[TrialStatus, int]:
    """How many of the job's trials are in each status."""
    rows = session.execute(
        select(Trial.status, func.count()).where(Trial.job_id == job_id).group_by(Trial.status)
    ).all()
    return {TrialStatus(status): int(count) for status, count in rows}


def best_completed(session: Session, job: Job) -> tuple[int, float] | None:
    """``(number, score)`` of the job's best completed trial (never a diverged or failed one)."""
    best = session.execute(
        select(Trial.number, Trial.score)
        .where(
            Trial.job_id == job.id,
            Trial.status == TrialStatus.COMPLETED,
            Trial.score.is_not(None),
        )
        .order_by(job.direction.order(Trial.score), Trial.number)
        .limit(1)
    ).first()
    return (best.number, best.score) if best else None


def list_trials(
    session: Session,
    job: Job,
    *,
    sort: str = "score",
    order: Order | None = None,
    status: TrialStatus | None = None,
    limit: int = 20,
    offset: int = 0,
) -> tuple[Sequence[Trial], int]:
    """One page of a job's leaderboard and the total matching ``status``.

    ``sort`` must be a key of ``TRIAL_SORT_COLUMNS``. Scores default to best first (by the job's
    direction); every other key to ascending. Nulls always sort last.
    """
    column = TRIAL_SORT_COLUMNS[sort]
    where: list[ColumnElement[bool]] = [Trial.job_id == job.id]
    if status is not None:
        where.append(Trial.status == status)
    total = session.scalar(select(func.count()).select_from(Trial).where(*where)) or 0
    if order is None:
        ordering = job.direction.order(column) if sort == "score" else column.asc()
    else:
        ordering = column.desc() if order == "desc" else column.asc()
    rows = session.scalars(
        select(Trial)
        .where(*where)
        .order_by(column.is_(None), ordering, Trial.number)
        .limit(limit)
        .offset(offset)
    ).all()
    return rows, total


def get_trial(
    session: Session, job_id: str, number: int, *, with_epochs: bool = False
) -> Trial | None:
    """Trial ``number`` of a job (with its epochs loaded if asked), or None."""
    query = select(Trial).where(Trial.job_id == job_id, Trial.number == number)
    if with_epochs:
        query = query.options(selectinload(Trial.epochs))
    return session.scalars(query).first()


def trials_by_number(session: Session, job_id: str) -> Sequence[Trial]:
    """Every trial of a job, by number, without their epochs (a job has at most
    ``search_spaces.limits.MAX_TRIALS`` of them: the CSV export reads them all at once)."""
    return session.scalars(select(Trial).where(Trial.job_id == job_id).order_by(Trial.number)).all()
