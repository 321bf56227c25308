"""Every database write of a search: trial claims and leases, epochs, counters, artifacts, job
ends, and the reaper's queries. Nothing here imports TensorFlow or Keras Tuner: the reaper runs
these in the worker's main process.

Most functions are one short transaction (``session_scope``), so the API reads progress as it
happens and a crash loses at most the epoch in flight. Those taking a ``session`` run inside a
transaction holding the job's lock (``lock_job``).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from db.engine import session_scope
from db.models import Epoch, Job, JobStatus, ModelArtifact, Trial, TrialCheckpoint, TrialStatus


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


# --- locks and claims ----------------------------------------------------------------------------


def lock_job(session: Session, job_id: str) -> Job | None:
    """Take the job's write lock for the rest of this transaction and return its fresh row.

    PostgreSQL: ``SELECT ... FOR UPDATE`` on the job row (other jobs are not blocked). SQLite:
    a no-op UPDATE first, which takes the database's single writer lock at once (what
    ``BEGIN IMMEDIATE`` does), so the reads that follow cannot go stale before the commit.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(id=Job.id)
            .execution_options(synchronize_session=False)
        )
        stmt = select(Job).where(Job.id == job_id)
    else:
        stmt = select(Job).where(Job.id == job_id).with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()


@dataclass(frozen=True)
class ClaimedTrial:
    id: int
    job_id: str
    number: int
    hyperparameters: dict[str, Any]
    attempts: int


def claim_trial(trial_id: int, worker: str) -> ClaimedTrial | None:
    """Compare-and-set WAITING -> RUNNING with a fresh lease; None if the trial is not waiting
    (a duplicate delivery, another worker has it, or it is final). A re-run starts clean: the
    epochs of an earlier, interrupted attempt are deleted."""
    now = utcnow()
    with session_scope() as session:
        result = session.execute(
            update(Trial)
            .where(Trial.id == trial_id, Trial.status == TrialStatus.WAITING)
            .values(
                status=TrialStatus.RUNNING,
                worker=worker,
                heartbeat_at=now,
                started_at=now,
                finished_at=None,
                attempts=Trial.attempts + 1,
                release_requested=False,
                epochs_run=0,
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            return None
        session.execute(delete(Epoch).where(Epoch.trial_id == trial_id))
        row = session.execute(
            select(Trial.job_id, Trial.number, Trial.hyperparameters, Trial.attempts).where(
                Trial.id == trial_id
            )
        ).one()
        return ClaimedTrial(trial_id, row.job_id, row.number, row.hyperparameters, row.attempts)


def heartbeat(trial_id: int, worker: str) -> bool:
    """Renew the trial's lease; False if it is no longer ours (taken back, or final)."""
    with session_scope() as session:
        result = session.execute(
            update(Trial)
            .where(
                Trial.id == trial_id, Trial.worker == worker, Trial.status == TrialStatus.RUNNING
            )
            .values(heartbeat_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1


class Control(enum.StrEnum):
    """What a running trial should do, read between epochs."""

    GO_ON = "go_on"
    CANCEL = "cancel"
    LEASE_LOST = "lease_lost"
    RELEASE = "release"


def trial_control(trial_id: int, worker: str) -> Control:
    """One cheap query between epochs: job cancelled, lease lost, or warm shutdown?"""
    with session_scope() as session:
        row = session.execute(
            select(
                Trial.status,
                Trial.worker,
                Trial.release_requested,
                Job.cancel_requested,
                Job.status.label("job_status"),
            )
            .join(Job, Job.id == Trial.job_id)
            .where(Trial.id == trial_id)
        ).one_or_none()
    if row is None or row.status != TrialStatus.RUNNING or row.worker != worker:
        return Control.LEASE_LOST
    if row.cancel_requested or JobStatus(row.job_status).is_final:
        return Control.CANCEL
    if row.release_requested:
        return Control.RELEASE
    return Control.GO_ON


def release_trial(trial_id: int, worker: str) -> bool:
    """Warm shutdown: hand a running trial back to the queue (WAITING) without counting the
    attempt. False if it was no longer ours."""
    with session_scope() as session:
        result = session.execute(
            update(Trial)
            .where(
                Trial.id == trial_id, Trial.worker == worker, Trial.status == TrialStatus.RUNNING
            )
            .values(
                status=TrialStatus.WAITING,
                worker=None,
                heartbeat_at=None,
                started_at=None,
                attempts=Trial.attempts - 1,
                release_requested=False,
                enqueued_at=utcnow(),
                epochs_run=0,
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            return False
        session.execute(delete(Epoch).where(Epoch.trial_id == trial_id))
        return True


def request_release(worker_prefix: str) -> int:
    """A worker's warm shutdown: ask its running trials to go back to the queue at their next
    epoch. Returns how many were asked."""
    with session_scope() as session:
        result = session.execute(
            update(Trial)
            .where(Trial.status == TrialStatus.RUNNING, Trial.worker.startswith(worker_prefix))
            .values(release_requested=True)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)


# --- the job -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobSnapshot:
    id: str
    status: JobStatus
    spec: dict[str, Any]
    cancel_requested: bool
    started_at: datetime | None
    dataset_info: dict[str, Any] | None


def load_job(job_id: str) -> JobSnapshot:
    with session_scope() as session:
        job = session.get_one(Job, job_id)
        return JobSnapshot(
            id=job.id,
            status=job.status,
            spec=job.spec,
            cancel_requested=job.cancel_requested,
            started_at=as_utc(job.started_at),
            dataset_info=job.dataset_info,
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


def record_dataset_info(job_id: str, dataset_info: dict[str, Any]) -> None:
    """The dataset facts (rows, features, split seed...), written by the first trial to run."""
    with session_scope() as session:
        session.execute(
            update(Job)
            .where(Job.id == job_id, Job.dataset_info.is_(None))
            .values(dataset_info=json_safe(dataset_info))
            .execution_options(synchronize_session=False)
        )


def active_trials(session: Session, job_id: str, status: TrialStatus | None = None) -> int:
    """How many of the job's trials are waiting or running (or only ``status``)."""
    statuses = [status] if status else [TrialStatus.WAITING, TrialStatus.RUNNING]
    return int(
        session.execute(
            select(func.count())
            .select_from(Trial)
            .where(Trial.job_id == job_id, Trial.status.in_(statuses))
        ).scalar_one()
    )


def time_limit_reached(job: Job, now: datetime | None = None) -> bool:
    """The spec's ``search.time_limit_s``, counted from the job's first trial."""
    limit = (job.spec.get("search") or {}).get("time_limit_s")
    started = as_utc(job.started_at)
    if limit is None or started is None:
        return False
    return ((now or utcnow()) - started).total_seconds() > float(limit)


def settle_job(session: Session, job: Job) -> bool:
    """Under the job lock: handle the states that need no oracle. True if the job needs no
    new trials: it is final, cancelled (its waiting trials are cancelled; it ends once none
    runs) or out of time (likewise)."""
    if job.status.is_final:
        return True
    if job.cancel_requested:
        _cancel_waiting(session, job.id, "job cancelled")
        if not active_trials(session, job.id, TrialStatus.RUNNING):
            finalize_job(session, job, JobStatus.CANCELLED)
        return True
    if time_limit_reached(job):
        _cancel_waiting(session, job.id, "the job's time limit was reached before it started")
        if not active_trials(session, job.id, TrialStatus.RUNNING):
            end_search(session, job, timed_out=True)
        return True
    return False


def _cancel_waiting(session: Session, job_id: str, reason: str) -> None:
    session.execute(
        update(Trial)
        .where(Trial.job_id == job_id, Trial.status == TrialStatus.WAITING)
        .values(status=TrialStatus.CANCELLED, failure_reason=reason, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def end_search(session: Session, job: Job, *, timed_out: bool = False) -> None:
    """The oracle has nothing left to run (or time is up) and no trial is active: succeeded
    if a trial completed, failed otherwise."""
    session.flush()
    _refresh_counters(session, job)
    if job.trials_completed:
        finalize_job(session, job, JobStatus.SUCCEEDED)
        return
    why = (
        "the time limit was reached before any trial completed"
        if timed_out
        else "no trial completed"
    )
    finalize_job(
        session,
        job,
        JobStatus.FAILED,
        f"{why} ({job.trials_failed} failed, {job.trials_diverged} diverged)",
    )


def finalize_job(session: Session, job: Job, status: JobStatus, error: str | None = None) -> None:
    """Final state, under the job lock: ranks 1..k on the artifacts, counters, ``finished_at``;
    trials still active are closed; Hyperband checkpoints are deleted."""
    now = utcnow()
    session.execute(
        update(Trial)
        .where(Trial.job_id == job.id, Trial.status.in_([TrialStatus.WAITING, TrialStatus.RUNNING]))
        .values(
            status=TrialStatus.CANCELLED if status is JobStatus.CANCELLED else TrialStatus.FAILED,
            failure_reason=error or f"job {status.value}",
            finished_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    session.execute(delete(TrialCheckpoint).where(TrialCheckpoint.job_id == job.id))
    session.flush()
    _refresh_counters(session, job)
    _rank_artifacts(session, job)
    job.status = status
    job.error = error
    job.finished_at = now
    job.heartbeat_at = now


def finish_job(job_id: str, status: JobStatus, error: str | None = None) -> None:
    """Finalize a job in a transaction of its own (no-op if it is already final)."""
    with session_scope() as session:
        job = lock_job(session, job_id)
        if job is not None and not job.status.is_final:
            finalize_job(session, job, status, error)


def fail_job(job_id: str, error: str) -> None:
    """Mark a job failed unless it already reached a final state."""
    finish_job(job_id, JobStatus.FAILED, error)


# --- the reaper (runs in each worker's main process: no TensorFlow here) ------------------------


def requeue_abandoned_trials(stale_after_s: float, dead_workers: Collection[str] = ()) -> list[int]:
    """RUNNING trials whose lease expired (heartbeat older than ``stale_after_s``), or whose
    worker process is known dead, go back to WAITING. Returns their ids (to be sent again).
    Each is a compare-and-set on the lease it read, so a trial that just beat is left alone."""
    cutoff = utcnow() - timedelta(seconds=stale_after_s)
    reaped: list[int] = []
    with session_scope() as session:
        candidates = session.execute(
            select(Trial.id, Trial.worker, Trial.heartbeat_at).where(
                Trial.status == TrialStatus.RUNNING,
                or_(
                    Trial.heartbeat_at.is_(None),
                    Trial.heartbeat_at < cutoff,
                    Trial.worker.in_(sorted(dead_workers)),
                ),
            )
        ).all()
    for row in candidates:
        with session_scope() as session:
            lease = (
                Trial.heartbeat_at.is_(None)
                if row.heartbeat_at is None
                else Trial.heartbeat_at == row.heartbeat_at
            )
            result = session.execute(
                update(Trial)
                .where(
                    Trial.id == row.id,
                    Trial.status == TrialStatus.RUNNING,
                    Trial.worker == row.worker,
                    lease,
                )
                .values(
                    status=TrialStatus.WAITING,
                    worker=None,
                    heartbeat_at=None,
                    release_requested=False,
                    enqueued_at=utcnow(),
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:
                reaped.append(row.id)
    return reaped


def resend_waiting_trials(stale_after_s: float) -> list[int]:
    """WAITING trials whose message was sent more than ``stale_after_s`` ago and never started
    (lost by a broker without redelivery, or by a flushed Redis): bump ``enqueued_at`` and
    return them, to be sent again. A duplicate message is harmless (the claim is a CAS)."""
    now = utcnow()
    cutoff = now - timedelta(seconds=stale_after_s)
    with session_scope() as session:
        ids = list(
            session.scalars(
                select(Trial.id)
                .join(Job, Job.id == Trial.job_id)
                .where(
                    Trial.status == TrialStatus.WAITING,
                    or_(Trial.enqueued_at.is_(None), Trial.enqueued_at < cutoff),
                    Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]),
                )
            )
        )
        if ids:
            session.execute(
                update(Trial)
                .where(Trial.id.in_(ids))
                .values(enqueued_at=now)
                .execution_options(synchronize_session=False)
            )
        return ids


def jobs_to_dispatch(stale_after_s: float) -> list[str]:
    """Jobs that are not final, not cancelled, have no active trial and saw no dispatch for
    ``stale_after_s`` (their dispatch message was lost). Their ``heartbeat_at`` (last dispatch)
    is bumped so each is re-sent at most once per ``stale_after_s``."""
    now = utcnow()
    cutoff = now - timedelta(seconds=stale_after_s)
    active = (
        select(Trial.id)
        .where(Trial.job_id == Job.id, Trial.status.in_([TrialStatus.WAITING, TrialStatus.RUNNING]))
        .exists()
    )
    with session_scope() as session:
        ids = list(
            session.scalars(
                select(Job.id).where(
                    Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]),
                    Job.cancel_requested.is_(False),
                    ~active,
                    or_(
                        Job.heartbeat_at < cutoff,
                        Job.heartbeat_at.is_(None) & (Job.created_at < cutoff),
                    ),
                )
            )
        )
        if ids:
            session.execute(
                update(Job)
                .where(Job.id.in_(ids))
                .values(heartbeat_at=now)
                .execution_options(synchronize_session=False)
            )
        return ids


def settle_cancelled_jobs() -> list[str]:
    """Cancelled jobs that are not final yet: cancel their waiting trials now, and end the
    ones with no running trial (a running one ends the job itself at its next epoch)."""
    with session_scope() as session:
        ids = list(
            session.scalars(
                select(Job.id).where(
                    Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]),
                    Job.cancel_requested.is_(True),
                )
            )
        )
    ended = []
    for job_id in ids:
        with session_scope() as session:
            job = lock_job(session, job_id)
            if job is None or job.status.is_final:
                continue
            settle_job(session, job)
            if job.status.is_final:
                ended.append(job_id)
    return ended


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


# --- trials and epochs -------------------------------------------------------------------------


def record_epoch(
    trial_id: int,
    execution: int,
    epoch: int,
    metrics: dict[str, Any],
    learning_rate: float | None,
    duration_s: float,
    worker: str | None = None,
) -> bool:
    """Write one epoch row, only while ``worker`` still holds the trial (checked and counted in
    the same transaction): a worker that lost its lease (frozen, then woken up) writes nothing
    over the attempt that replaced it. False if the lease is lost."""
    with session_scope() as session:
        owned = [Trial.id == trial_id]
        if worker is not None:
            owned += [Trial.worker == worker, Trial.status == TrialStatus.RUNNING]
        result = session.execute(
            update(Trial)
            .where(*owned)
            .values(epochs_run=Trial.epochs_run + 1)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            return False
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
        return True


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


@dataclass
class TrialResult:
    """What a worker reports for a trial it ran (see ``trial_runner.TrialOutcome``)."""

    status: TrialStatus
    score: float | None = None
    best_epoch: int | None = None
    metrics: dict[str, float] | None = None
    parameter_count: int | None = None
    failure_reason: str | None = None
    duration_s: float | None = None
    fit_duration_s: float | None = None
    artifact: ArtifactPayload | None = None
    checkpoint: bytes | None = None


def _replace_trial_row(session: Session, row: ModelArtifact | TrialCheckpoint) -> None:
    """Store ``row`` as the only one of its kind for its (job, trial number): a re-run trial
    replaces what an earlier attempt left."""
    model = type(row)
    session.execute(
        delete(model).where(model.job_id == row.job_id, model.trial_number == row.trial_number)
    )
    session.add(row)
    session.flush()


def close_trial(
    session: Session, job: Job, trial: Trial, result: TrialResult, top_k: int = 1
) -> None:
    """Under the job lock: close a trial, store its model if it made the top-k, keep its
    Hyperband checkpoint, refresh the job's counters. The caller saves the oracle state in the
    same transaction, so the DB and the oracle never disagree."""
    score, artifact, checkpoint = result.score, result.artifact, result.checkpoint
    trial.status = result.status
    trial.score = score if score is not None and math.isfinite(score) else None
    trial.best_epoch = result.best_epoch
    trial.metrics = json_safe(result.metrics) if result.metrics is not None else None
    trial.parameter_count = result.parameter_count
    trial.failure_reason = result.failure_reason
    trial.finished_at = utcnow()
    trial.duration_s = result.duration_s
    trial.fit_duration_s = result.fit_duration_s
    trial.release_requested = False
    if artifact is not None and trial.score is not None:
        _replace_trial_row(
            session,
            ModelArtifact(
                job_id=job.id,
                trial_number=trial.number,
                score=trial.score,
                size_bytes=len(artifact.content),
                sha256=artifact.sha256,
                signature=json_safe(artifact.signature),
                content=artifact.content,
            ),
        )
        _prune_artifacts(session, job, top_k)
    if checkpoint is not None:
        _replace_trial_row(
            session,
            TrialCheckpoint(
                job_id=job.id,
                trial_number=trial.number,
                content=checkpoint,
                size_bytes=len(checkpoint),
            ),
        )
    session.flush()
    _refresh_counters(session, job)


def load_checkpoint(job_id: str, trial_number: int) -> bytes | None:
    """The weights a completed Hyperband trial ended with (None if there are none)."""
    with session_scope() as session:
        return session.execute(
            select(TrialCheckpoint.content).where(
                TrialCheckpoint.job_id == job_id, TrialCheckpoint.trial_number == trial_number
            )
        ).scalar_one_or_none()


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
