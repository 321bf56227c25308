"""Every database write of a search: claim and heartbeat, trials, epochs, counters, artifacts.

Each function is one short transaction (``session_scope``), so the API reads progress as it
happens and a crash loses at most the epoch in flight.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update

from db.engine import session_scope
from db.models import Epoch, Job, JobStatus, ModelArtifact, Trial, TrialStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes (stored as UTC): make them aware."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def json_safe(value: Any) -> Any:
    """Plain JSON: numpy scalars become Python numbers, NaN/inf become null (PostgreSQL's JSON
    rejects them)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def is_better(a: float, b: float | None, direction: str) -> bool:
    """True if score ``a`` beats ``b`` (``None`` is beaten by anything)."""
    if b is None:
        return True
    return a > b if direction == "max" else a < b


# --- the job -----------------------------------------------------------------------------------


def claim_job(job_id: str, worker: str, stale_after_s: float) -> bool:
    """Compare-and-set: take a queued job, or a running one whose worker stopped beating."""
    now = utcnow()
    with session_scope() as session:
        result = session.execute(
            update(Job)
            .where(
                Job.id == job_id,
                or_(
                    Job.status == JobStatus.QUEUED,
                    (Job.status == JobStatus.RUNNING)
                    & or_(
                        Job.heartbeat_at.is_(None),
                        Job.heartbeat_at < now - timedelta(seconds=stale_after_s),
                    ),
                ),
            )
            .values(
                status=JobStatus.RUNNING,
                worker=worker,
                heartbeat_at=now,
                attempts=Job.attempts + 1,
                started_at=func.coalesce(Job.started_at, now),
            )
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


def heartbeat(job_id: str, worker: str) -> bool:
    """Prove the worker is alive; False if the job is no longer ours (lease lost or final)."""
    with session_scope() as session:
        result = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.worker == worker, Job.status == JobStatus.RUNNING)
            .values(heartbeat_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


@dataclass(frozen=True)
class JobSnapshot:
    id: str
    spec: dict[str, Any]
    oracle_state: dict[str, Any] | None
    cancel_requested: bool
    attempts: int
    started_at: datetime | None


def load_job(job_id: str) -> JobSnapshot:
    with session_scope() as session:
        job = session.get_one(Job, job_id)
        return JobSnapshot(
            id=job.id,
            spec=job.spec,
            oracle_state=job.oracle_state,
            cancel_requested=job.cancel_requested,
            attempts=job.attempts,
            started_at=as_utc(job.started_at),
        )


def job_status(job_id: str) -> JobStatus:
    with session_scope() as session:
        return session.execute(select(Job.status).where(Job.id == job_id)).scalar_one()


@dataclass(frozen=True)
class TrialCounts:
    completed: int
    failed: int
    diverged: int


def trial_counts(job_id: str) -> TrialCounts:
    with session_scope() as session:
        job = session.get_one(Job, job_id)
        _refresh_counters(session, job)
        return TrialCounts(job.trials_completed, job.trials_failed, job.trials_diverged)


def record_preparation(job_id: str, dataset_info: dict[str, Any], max_trials: int) -> None:
    """The dataset facts and the number of trials the search will run."""
    with session_scope() as session:
        job = session.get_one(Job, job_id)
        job.dataset_info = json_safe(dataset_info)
        job.max_trials = max_trials


def save_oracle_state(job_id: str, oracle_state: dict[str, Any]) -> None:
    with session_scope() as session:
        session.get_one(Job, job_id).oracle_state = oracle_state


def job_control(job_id: str, worker: str) -> tuple[bool, bool]:
    """``(cancel_requested, still_ours)``: one cheap query, run between epochs and trials."""
    with session_scope() as session:
        row = session.execute(
            select(Job.cancel_requested, Job.worker, Job.status).where(Job.id == job_id)
        ).one()
        return bool(row.cancel_requested), (
            row.worker == worker and row.status == JobStatus.RUNNING
        )


def _refresh_counters(session: Any, job: Job) -> None:
    """Recount trials by status and pick the best completed one (never a diverged/failed one)."""
    counts = dict(
        session.execute(
            select(Trial.status, func.count()).where(Trial.job_id == job.id).group_by(Trial.status)
        ).all()
    )
    job.trials_completed = counts.get(TrialStatus.COMPLETED, 0)
    job.trials_failed = counts.get(TrialStatus.FAILED, 0)
    job.trials_diverged = counts.get(TrialStatus.DIVERGED, 0)
    order = Trial.score.desc() if job.direction == "max" else Trial.score.asc()
    best = session.execute(
        select(Trial.number, Trial.score)
        .where(
            Trial.job_id == job.id,
            Trial.status == TrialStatus.COMPLETED,
            Trial.score.is_not(None),
        )
        .order_by(order, Trial.number)
        .limit(1)
    ).first()
    job.best_trial_number, job.best_score = (best.number, best.score) if best else (None, None)


def finish_job(job_id: str, status: JobStatus, error: str | None = None) -> None:
    """Final state: ranks 1..k on the artifacts, counters, ``finished_at``; stale trials closed."""
    with session_scope() as session:
        job = session.get_one(Job, job_id)
        session.execute(
            update(Trial)
            .where(Trial.job_id == job_id, Trial.status == TrialStatus.RUNNING)
            .values(
                status=TrialStatus.CANCELLED
                if status is JobStatus.CANCELLED
                else TrialStatus.FAILED,
                failure_reason=error or f"job {status.value}",
                finished_at=utcnow(),
            )
            .execution_options(synchronize_session=False)
        )
        _refresh_counters(session, job)
        _rank_artifacts(session, job)
        job.status = status
        job.error = error
        job.finished_at = utcnow()
        job.heartbeat_at = utcnow()


def fail_job(job_id: str, error: str) -> None:
    """Mark a job failed unless it already reached a final state."""
    with session_scope() as session:
        job = session.get(Job, job_id)
        if job is None or job.status.is_final:
            return
    finish_job(job_id, JobStatus.FAILED, error)


def stale_job_ids(stale_after_s: float) -> list[str]:
    """Jobs whose message was probably lost: running without a heartbeat, or queued for long."""
    cutoff = utcnow() - timedelta(seconds=stale_after_s)
    with session_scope() as session:
        return list(
            session.scalars(
                select(Job.id).where(
                    or_(
                        (Job.status == JobStatus.RUNNING)
                        & or_(Job.heartbeat_at.is_(None), Job.heartbeat_at < cutoff),
                        (Job.status == JobStatus.QUEUED) & (Job.created_at < cutoff),
                    )
                )
            )
        )


# --- trials and epochs -------------------------------------------------------------------------


def start_trial(
    job_id: str, number: int, hyperparameters: dict[str, Any], oracle_state: dict[str, Any]
) -> int:
    """Create the trial row (or reset the one a crashed worker left running) and save the
    oracle state in the same transaction. Returns the row id."""
    with session_scope() as session:
        trial = session.scalars(
            select(Trial).where(Trial.job_id == job_id, Trial.number == number)
        ).one_or_none()
        if trial is None:
            trial = Trial(job_id=job_id, number=number)
            session.add(trial)
        else:
            session.execute(delete(Epoch).where(Epoch.trial_id == trial.id))
            session.execute(
                delete(ModelArtifact).where(
                    ModelArtifact.job_id == job_id, ModelArtifact.trial_number == number
                )
            )
        trial.status = TrialStatus.RUNNING
        trial.hyperparameters = json_safe(hyperparameters)
        trial.score = trial.best_epoch = trial.metrics = trial.parameter_count = None
        trial.failure_reason = trial.finished_at = None
        trial.duration_s = trial.fit_duration_s = None
        trial.epochs_run = 0
        trial.started_at = utcnow()
        session.get_one(Job, job_id).oracle_state = oracle_state
        session.flush()
        return trial.id


def record_epoch(
    trial_id: int,
    execution: int,
    epoch: int,
    metrics: dict[str, Any],
    learning_rate: float | None,
    duration_s: float,
) -> None:
    with session_scope() as session:
        session.add(
            Epoch(
                trial_id=trial_id,
                execution=execution,
                epoch=epoch,
                metrics=json_safe(metrics),
                learning_rate=learning_rate,
                duration_s=duration_s,
            )
        )
        session.execute(
            update(Trial)
            .where(Trial.id == trial_id)
            .values(epochs_run=Trial.epochs_run + 1)
            .execution_options(synchronize_session=False)
        )


@dataclass
class ArtifactPayload:
    content: bytes
    sha256: str
    signature: dict[str, Any]


def qualifies_for_top_k(job_id: str, score: float, direction: str, top_k: int) -> bool:
    """Would a completed trial with ``score`` enter the job's top-k stored models?"""
    with session_scope() as session:
        scores = list(
            session.scalars(select(ModelArtifact.score).where(ModelArtifact.job_id == job_id))
        )
    if len(scores) < top_k:
        return True
    worst = min(scores) if direction == "max" else max(scores)
    return is_better(score, worst, direction)


def finish_trial(
    job_id: str,
    trial_id: int,
    *,
    status: TrialStatus,
    score: float | None,
    best_epoch: int | None,
    metrics: dict[str, Any] | None,
    parameter_count: int | None,
    failure_reason: str | None,
    duration_s: float,
    fit_duration_s: float | None,
    oracle_state: dict[str, Any] | None,
    artifact: ArtifactPayload | None = None,
    top_k: int = 1,
) -> None:
    """Close a trial, store its model if it made the top-k, refresh the job's counters and
    save the oracle state: one transaction, so the DB and the oracle never disagree."""
    with session_scope() as session:
        trial = session.get_one(Trial, trial_id)
        job = session.get_one(Job, job_id)
        trial.status = status
        trial.score = score if score is not None and math.isfinite(score) else None
        trial.best_epoch = best_epoch
        trial.metrics = json_safe(metrics) if metrics is not None else None
        trial.parameter_count = parameter_count
        trial.failure_reason = failure_reason
        trial.finished_at = utcnow()
        trial.duration_s = duration_s
        trial.fit_duration_s = fit_duration_s
        if artifact is not None and trial.score is not None:
            session.add(
                ModelArtifact(
                    job_id=job_id,
                    trial_number=trial.number,
                    score=trial.score,
                    size_bytes=len(artifact.content),
                    sha256=artifact.sha256,
                    signature=json_safe(artifact.signature),
                    content=artifact.content,
                )
            )
            session.flush()
            _prune_artifacts(session, job, top_k)
        if oracle_state is not None:
            job.oracle_state = oracle_state
        session.flush()
        _refresh_counters(session, job)


def _ranked_artifacts(session: Any, job: Job) -> list[tuple[int, float | None]]:
    order = ModelArtifact.score.desc() if job.direction == "max" else ModelArtifact.score.asc()
    return list(
        session.execute(
            select(ModelArtifact.id, ModelArtifact.score)
            .where(ModelArtifact.job_id == job.id)
            .order_by(order, ModelArtifact.trial_number)
        ).all()
    )


def _prune_artifacts(session: Any, job: Job, top_k: int) -> None:
    """Delete the stored models that fell out of the top-k."""
    drop = [row.id for row in _ranked_artifacts(session, job)[top_k:]]
    if drop:
        session.execute(delete(ModelArtifact).where(ModelArtifact.id.in_(drop)))


def _rank_artifacts(session: Any, job: Job) -> None:
    for rank, row in enumerate(_ranked_artifacts(session, job), start=1):
        session.execute(
            update(ModelArtifact)
            .where(ModelArtifact.id == row.id)
            .values(rank=rank)
            .execution_options(synchronize_session=False)
        )
