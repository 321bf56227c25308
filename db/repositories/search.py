"""A job's trials as its search algorithm sees them: the trials it proposed, the results it has
not learnt yet (written by workers without the job's lock, folded in by whoever holds it), and the
rows it reads back. Everything but ``has_unreported`` runs under the job's lock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from db.engine import session_scope
from db.models import Trial, TrialStatus
from db.repositories.trials import ACTIVE
from db.transient import retried
from db.values import json_safe, utcnow


@dataclass(frozen=True)
class EndedTrial:
    """A trial's result, not folded into the job's search yet."""

    id: int
    number: int
    status: TrialStatus
    score: float | None
    best_epoch: int | None
    failure_reason: str | None
    #: the trial a confirmation run re-runs (None for the search's own trials)
    confirms: int | None = None


_UNREPORTED = (
    Trial.reported.is_(False),
    Trial.status.in_([s for s in TrialStatus if not s.is_active]),
)


def unreported(session: Session, job_id: str) -> list[EndedTrial]:
    """The job's ended trials whose results the search has not learnt yet, in the order they
    ended."""
    rows = session.execute(
        select(
            Trial.id,
            Trial.number,
            Trial.status,
            Trial.score,
            Trial.best_epoch,
            Trial.failure_reason,
            Trial.confirms,
        )
        .where(Trial.job_id == job_id, *_UNREPORTED)
        .order_by(Trial.finished_at, Trial.number)
    ).all()
    return [
        EndedTrial(
            r.id,
            r.number,
            TrialStatus(r.status),
            r.score,
            r.best_epoch,
            r.failure_reason,
            r.confirms,
        )
        for r in rows
    ]


@retried("look for results to fold into a search")
def has_unreported(job_id: str) -> bool:
    """Whether the job has results its search has not learnt yet (no lock taken)."""
    with session_scope() as session:
        found = session.scalar(
            select(Trial.id).where(Trial.job_id == job_id, *_UNREPORTED).limit(1)
        )
        return found is not None


def mark_reported(session: Session, trial_ids: list[int]) -> None:
    """These results are folded into the search now."""
    if trial_ids:
        session.execute(
            update(Trial)
            .where(Trial.id.in_(trial_ids))
            .values(reported=True)
            .execution_options(synchronize_session=False)
        )


def add_waiting_trial(
    session: Session,
    job_id: str,
    number: int,
    hyperparameters: dict[str, Any],
    now: datetime,
    proposal_s: float | None = None,
    confirms: tuple[int, int] | None = None,
) -> Trial:
    """A new trial the search algorithm proposed (in ``proposal_s`` seconds), or a
    confirmation run (``confirms``: the trial it re-runs and its seed), waiting for its
    message to be taken."""
    trial = Trial(
        job_id=job_id,
        number=number,
        status=TrialStatus.WAITING,
        hyperparameters=json_safe(hyperparameters),
        started_at=None,
        proposed_at=utcnow(),
        proposal_s=proposal_s,
        enqueued_at=now,
        attempts=0,
        epochs_run=0,
        confirms=confirms[0] if confirms else None,
        confirm_seed=confirms[1] if confirms else None,
    )
    session.add(trial)
    return trial


@dataclass(frozen=True)
class SearchRecord:
    """A trial as the search algorithm learns of it."""

    values: dict[str, Any]
    status: TrialStatus
    score: float | None
    best_epoch: int | None
    failure_reason: str | None
    #: epochs trained (a pruned trial: where its pruner stopped it)
    last_epoch: int | None = None


def search_records(
    session: Session, job_id: str, numbers: list[int] | None = None
) -> dict[int, SearchRecord]:
    """The job's trials (only ``numbers``, if given) as the search algorithm reads them: its
    own, not the confirmation runs of its best (``search.confirm``)."""
    query = select(
        Trial.number,
        Trial.hyperparameters,
        Trial.status,
        Trial.score,
        Trial.best_epoch,
        Trial.failure_reason,
        func.coalesce(Trial.pruned_epoch, Trial.epochs_run).label("last_epoch"),
    ).where(Trial.job_id == job_id, Trial.confirms.is_(None))
    if numbers is not None:
        query = query.where(Trial.number.in_(numbers))
    return {
        row.number: SearchRecord(
            row.hyperparameters,
            TrialStatus(row.status),
            row.score,
            row.best_epoch,
            row.failure_reason,
            row.last_epoch,
        )
        for row in session.execute(query)
    }


def in_flight(session: Session, job_id: str) -> int:
    """How many of the job's trials the search still waits for: waiting, running, or ended but
    not folded in yet (a result that landed after this fold looked: the next fold takes it, and
    until then the job neither ends nor gets a trial past its cap)."""
    return int(
        session.execute(
            select(func.count())
            .select_from(Trial)
            .where(Trial.job_id == job_id, Trial.reported.is_(False))
        ).scalar_one()
    )


def active_trials(session: Session, job_id: str, status: TrialStatus | None = None) -> int:
    """How many of the job's trials are waiting or running (or only ``status``)."""
    statuses = [status] if status else list(ACTIVE)
    return int(
        session.execute(
            select(func.count())
            .select_from(Trial)
            .where(Trial.job_id == job_id, Trial.status.in_(statuses))
        ).scalar_one()
    )


def cancel_waiting(session: Session, job_id: str, reason: str) -> None:
    """The job's waiting trials will never run: ``cancelled``, with ``reason``."""
    session.execute(
        update(Trial)
        .where(Trial.job_id == job_id, Trial.status == TrialStatus.WAITING)
        .values(
            status=TrialStatus.CANCELLED, failure_reason=reason, finished_at=utcnow(), reported=True
        )
        .execution_options(synchronize_session=False)
    )


def close_active(session: Session, job_id: str, status: TrialStatus, reason: str) -> None:
    """The job ended: its waiting and running trials end as ``status`` with ``reason``."""
    session.execute(
        update(Trial)
        .where(Trial.job_id == job_id, Trial.status.in_(ACTIVE))
        .values(
            status=status, failure_reason=reason, finished_at=utcnow(), lease=None, reported=True
        )
        .execution_options(synchronize_session=False)
    )


def ended_since(session: Session, job_id: str, number: int | None) -> int:
    """How many of the search's own trials ended with a result (completed, failed, diverged,
    pruned), folded into the search, after trial ``number`` ended (None: all of them)."""
    verdicts = [s for s in TrialStatus if s.informs_search]
    # only results folded in already: the job's best knows of them (a result written since
    # might be a better one)
    query = select(func.count()).where(
        Trial.job_id == job_id,
        Trial.confirms.is_(None),
        Trial.status.in_(verdicts),
        Trial.reported.is_(True),
    )
    if number is not None:
        ended = (
            select(Trial.finished_at)
            .where(Trial.job_id == job_id, Trial.number == number, Trial.confirms.is_(None))
            .scalar_subquery()
        )
        query = query.where(Trial.finished_at > ended)
    return int(session.scalar(query) or 0)
