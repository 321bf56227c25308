"""What the browser dashboard reads: a job's trials as light rows (no epochs, no model bytes),
the epochs of a few chosen trials, the models a job stores, and a cheap version of a job that
changes whenever anything the job page shows does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, null, select
from sqlalchemy.orm import Session

from db.models import Epoch, Job, JobStatus, Trial, TrialStatus
from db.values import as_utc, is_id

#: the most trials whose curves one request may ask for.
MAX_CURVE_TRIALS = 20


@dataclass(frozen=True)
class TrialRow:
    """One trial as the job page shows it."""

    number: int
    status: TrialStatus
    score: float | None
    hyperparameters: dict[str, Any]
    epochs_run: int
    best_epoch: int | None
    parameter_count: int | None
    failure_reason: str | None
    worker: str | None
    proposed_at: datetime | None
    proposal_s: float | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    #: the trial's verdicts on its training health and their baseline (None: not judged)
    health: dict[str, Any] | None = None
    #: a confirmation run: the trial whose configuration it trains again
    confirms: int | None = None


@dataclass(frozen=True)
class EpochRow:
    """One epoch of one execution of a trial."""

    execution: int
    epoch: int
    metrics: dict[str, Any]
    learning_rate: float | None
    #: the probe's record of the network after the epoch (None: not probed)
    health: dict[str, Any] | None = None


def trial_rows(session: Session, job_id: str, number: int | None = None) -> list[TrialRow]:
    """Every trial of the job in number order (only trial ``number`` if given), without epochs
    or the trial's lease columns."""
    rows = session.execute(
        select(
            Trial.number,
            Trial.status,
            Trial.score,
            Trial.hyperparameters,
            Trial.epochs_run,
            Trial.best_epoch,
            Trial.parameter_count,
            Trial.failure_reason,
            Trial.worker,
            Trial.proposed_at,
            Trial.proposal_s,
            Trial.started_at,
            Trial.finished_at,
            Trial.duration_s,
            Trial.health,
            Trial.confirms,
        )
        .where(Trial.job_id == job_id, *([Trial.number == number] if number is not None else []))
        .order_by(Trial.number)
    ).all()
    moments = ("proposed_at", "started_at", "finished_at")
    return [
        TrialRow(**{k: as_utc(v) if k in moments else v for k, v in row._asdict().items()})
        for row in rows
    ]


def trial_epochs(
    session: Session, job_id: str, numbers: Sequence[int], with_health: bool = False
) -> dict[int, list[EpochRow]]:
    """The epochs of trials ``numbers`` of the job (at most ``MAX_CURVE_TRIALS``), by number;
    their probe records too when ``with_health``."""
    wanted = sorted(set(numbers))[:MAX_CURVE_TRIALS]
    curves: dict[int, list[EpochRow]] = {n: [] for n in wanted}
    if not wanted:
        return curves
    health = Epoch.health if with_health else null()
    rows = session.execute(
        select(
            Trial.number, Epoch.execution, Epoch.epoch, Epoch.metrics, Epoch.learning_rate, health
        )
        .join(Epoch, Epoch.trial_id == Trial.id)
        .where(Trial.job_id == job_id, Trial.number.in_(wanted))
        .order_by(Trial.number, Epoch.execution, Epoch.epoch)
    ).all()
    for number, execution, epoch, metrics, learning_rate, probed in rows:
        curves[number].append(
            EpochRow(execution, epoch, dict(metrics or {}), learning_rate, probed)
        )
    return curves


def trials_ended(session: Session, job_id: str, numbers: Sequence[int]) -> bool:
    """Whether every one of trials ``numbers`` of the job exists and has ended (its epochs
    change no more)."""
    wanted = sorted(set(numbers))
    ended = session.scalar(
        select(func.count(Trial.id)).where(
            Trial.job_id == job_id, Trial.number.in_(wanted), Trial.finished_at.is_not(None)
        )
    )
    return ended == len(wanted)


def model_ranks(session: Session, job: Job) -> dict[int, int]:
    """``{trial number: rank}`` of the job's stored models (rank 1 = best), ranked as the
    download route ranks them."""
    from db.repositories.artifacts import artifact_ranking

    return {a.trial_number: rank for rank, a in enumerate(artifact_ranking(session, job), 1)}


def job_version(session: Session, job_id: str, owner: str) -> str | None:
    """A token that changes when the job's state does or a trial ends or is proposed (not when
    one starts or records an epoch: every viewer's page would be rebuilt for each); None for an
    unknown job or another owner's. The job's few columns (not its spec and facts: every open
    page has this read twice a second) and one indexed aggregate query."""
    if not is_id(job_id):
        return None
    job = session.execute(
        select(Job.owner, Job.status, Job.best_score, Job.cancel_requested).where(Job.id == job_id)
    ).first()
    if job is None or job.owner != owner:
        return None
    trials = session.execute(
        select(
            func.count(Trial.id),
            func.max(Trial.finished_at),
            func.count(Trial.id).filter(Trial.status == TrialStatus.CANCELLED),
        ).where(Trial.job_id == job_id)
    ).one()
    parts = [job.status, job.best_score, job.cancel_requested, *trials]
    return "|".join("" if p is None else str(p) for p in parts)


def is_final_version(version: str) -> bool:
    """Whether a ``job_version`` token is that of an ended job (it changes no more)."""
    return JobStatus(version.split("|", 1)[0]).is_final if version else False


def trial_version(session: Session, job_id: str, number: int) -> str | None:
    """A token that changes when trial ``number`` records an epoch or ends; None if absent."""
    row = session.execute(
        select(Trial.status, Trial.epochs_run, Trial.finished_at).where(
            Trial.job_id == job_id, Trial.number == number
        )
    ).first()
    return None if row is None else "|".join(str(part) for part in row)
