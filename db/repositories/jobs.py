"""Jobs: what the API reads and changes, the job's lock, and how a search ends.

Everything that changes a running job's search (its trials, its oracle state, its end) runs in
one transaction holding the job's lock (``lock_job``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.orm import Session, undefer

from db.engine import session_scope
from db.models import Job, JobSplit, JobStatus, StopCause, Trial, TrialStatus
from db.repositories import artifacts, confirm, leaderboard, search
from db.repositories.trials import ACTIVE
from db.transient import retried
from db.values import as_utc, is_id, json_safe, utcnow

ACTIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


# --- the API ---------------------------------------------------------------------------------


def add_job(session: Session, job: Job) -> Job:
    """Insert ``job`` and flush, so its id and defaults are set."""
    session.add(job)
    session.flush()
    return job


def delete_job(session: Session, job_id: str) -> None:
    """Remove a job row (and, by cascade, everything under it)."""
    session.execute(delete(Job).where(Job.id == job_id))


def delete_final_job(session: Session, job_id: str) -> bool:
    """Remove a job that has ended (and everything under it); False if it is not final or a
    trial of it is still winding down (a cancelled job's last trial stops at its next epoch)."""
    final = [s for s in JobStatus if s.is_final]
    winding_down = select(Trial.id).where(Trial.job_id == job_id, Trial.status.in_(ACTIVE)).exists()
    result = session.execute(
        delete(Job).where(Job.id == job_id, Job.status.in_(final), ~winding_down)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def get_job(session: Session, job_id: str) -> Job | None:
    """The job with ``job_id``, or None."""
    return session.get(Job, job_id)


def get_owned_job(session: Session, job_id: str, owner: str) -> Job | None:
    """``owner``'s job ``job_id``; None for another owner's job, or an id that cannot exist
    (which never reaches the database: PostgreSQL rejects NUL bytes with an error of its own)."""
    job = session.get(Job, job_id) if is_id(job_id) else None
    return job if job is not None and job.owner == owner else None


def list_jobs(
    session: Session, *, owner: str, status: JobStatus | None, limit: int, offset: int
) -> tuple[Sequence[Job], int]:
    """One page of ``owner``'s jobs, newest first, and the total matching ``status``."""
    where: list[ColumnElement[bool]] = [Job.owner == owner]
    if status is not None:
        where.append(Job.status == status)
    total = session.scalar(select(func.count()).select_from(Job).where(*where)) or 0
    rows = session.scalars(
        select(Job)
        .where(*where)
        .order_by(Job.created_at.desc(), Job.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return rows, total


def cancel_queued_job(session: Session, job_id: str) -> bool:
    """QUEUED -> CANCELLED at once; False if the job was no longer queued."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
        .values(
            status=JobStatus.CANCELLED,
            cancel_requested=True,
            ended_by=StopCause.CANCELLED,
            finished_at=utcnow(),
        )
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def request_job_cancel(session: Session, job_id: str) -> bool:
    """Flag a RUNNING job for cancellation (its worker stops at the next epoch)."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.RUNNING)
        .values(cancel_requested=True)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def jobs_using_dataset(session: Session, dataset_name: str) -> list[str]:
    """Ids of the queued or running jobs that train on ``dataset_name``."""
    return list(
        session.scalars(
            select(Job.id).where(Job.dataset == dataset_name, Job.status.in_(ACTIVE_JOB_STATUSES))
        )
    )


# --- the workers -------------------------------------------------------------------------------


def lock_job(
    session: Session, job_id: str, *, skip_locked: bool = False, with_search_state: bool = False
) -> Job | None:
    """Take the job's write lock for the rest of this transaction and return its fresh row.

    PostgreSQL: ``SELECT ... FOR NO KEY UPDATE`` on the job row (other jobs are not blocked, nor
    the foreign-key checks of rows written under the job: a model, a checkpoint); a wait ends
    after ``lock_timeout`` (a transient error: the transaction is run again). With
    ``skip_locked``, None at once when another session holds it (the reaper never waits).
    ``with_search_state``: the search algorithm's state (deferred otherwise) comes in the same
    query. SQLite: a no-op UPDATE first, which takes the database's single writer lock at once (what
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
        stmt = (
            select(Job)
            .where(Job.id == job_id)
            .with_for_update(skip_locked=skip_locked, key_share=True)
        )
    if with_search_state:
        stmt = stmt.options(undefer(Job.oracle_state))
    return session.scalars(stmt.execution_options(populate_existing=True)).one_or_none()


def try_lock_search(session: Session, job_id: str, step_timeout_s: float | None = None) -> bool:
    """Take the right to change the job's search for the rest of this transaction, if no other
    session has it (PostgreSQL: a transaction-scoped advisory lock; SQLite: its writer lock,
    taken by ``lock_job``, already serialises). False at once if another session has it: it
    folds in what this one would have.

    ``step_timeout_s``: how long this transaction may stay silent while the search algorithm
    computes (a Bayesian proposal takes seconds on a busy machine) before the server cuts it
    off, in place of the shorter idle-in-transaction bound of every other transaction."""
    if session.get_bind().dialect.name != "postgresql":
        return True
    if step_timeout_s is not None:
        session.execute(
            select(
                func.set_config(
                    "idle_in_transaction_session_timeout", str(round(step_timeout_s * 1000)), True
                )
            )
        )
    key = int(hashlib.blake2b(job_id.encode(), digest_size=8).hexdigest(), 16) - 2**63
    return bool(session.execute(select(func.pg_try_advisory_xact_lock(key))).scalar_one())


@dataclass(frozen=True)
class JobSnapshot:
    """What a worker needs of a job to train one of its trials."""

    id: str
    status: JobStatus
    spec: dict[str, Any]
    cancel_requested: bool
    started_at: datetime | None
    dataset_info: dict[str, Any] | None


@retried("read a job")
def load_job(job_id: str) -> JobSnapshot:
    """The job as it is now."""
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


@dataclass(frozen=True)
class SplitRows:
    """The rows a job trains and validates on: int32 little-endian indices into the dataset."""

    rows_total: int
    train: bytes
    validation: bytes


@retried("record the dataset's facts")
def record_dataset_info(
    job_id: str, dataset_info: dict[str, Any], split: SplitRows | None = None
) -> None:
    """The dataset facts (rows, features, split seed...) and the split's rows, written by the
    first trial to run (once: a later one finds them there)."""
    with session_scope() as session:
        first = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.dataset_info.is_(None))
            .values(dataset_info=json_safe(dataset_info))
            .execution_options(synchronize_session=False)
        )
        if first.rowcount == 1 and split is not None:  # type: ignore[attr-defined]
            session.add(
                JobSplit(
                    job_id=job_id,
                    rows_total=split.rows_total,
                    train_rows=split.train,
                    validation_rows=split.validation,
                )
            )


def get_split(session: Session, job_id: str) -> JobSplit | None:
    """The rows job ``job_id`` trained and validated on, once its first trial recorded them."""
    return session.get(JobSplit, job_id)


def mark_dispatched(job: Job, planned_trials: int, now: datetime) -> None:
    """Under the job lock: the job runs (from its first dispatch), and was dispatched ``now``
    (the reaper re-sends jobs left silent for too long)."""
    if job.status is JobStatus.QUEUED:
        job.status = JobStatus.RUNNING
        job.started_at = job.started_at or now
        job.max_trials = planned_trials
    job.heartbeat_at = now


def save_oracle_state(job: Job, state: dict[str, Any]) -> None:
    """Under the job lock: the search algorithm's state after it proposed or learned."""
    job.oracle_state = state


def time_limit_reached(job: Job, now: datetime | None = None) -> bool:
    """The spec's ``search.time_limit_s``, counted from the job's first trial."""
    limit = (job.spec.get("search") or {}).get("time_limit_s")
    started = as_utc(job.started_at)
    if limit is None or started is None:
        return False
    return ((now or utcnow()) - started).total_seconds() > float(limit)


def settle_job(session: Session, job: Job) -> bool:
    """Under the job lock: handle the states that need no search algorithm. True if the job
    needs no new trials: it is final, cancelled (its waiting trials are cancelled; it ends once
    none runs) or out of time (likewise)."""
    if job.status.is_final:
        return True
    if job.cancel_requested:
        search.cancel_waiting(session, job.id, "job cancelled")
        if not search.active_trials(session, job.id, TrialStatus.RUNNING):
            finalize_job(session, job, JobStatus.CANCELLED)
        return True
    if time_limit_reached(job):
        search.cancel_waiting(session, job.id, "the job's time limit was reached before it started")
        if not search.active_trials(session, job.id, TrialStatus.RUNNING):
            end_search(session, job, timed_out=True)
        return True
    return False


def end_search(session: Session, job: Job, *, timed_out: bool = False) -> None:
    """The search has nothing left to run (or time is up) and no trial is active: succeeded if
    a trial completed, failed otherwise."""
    session.flush()
    refresh_counters(session, job)
    if job.ended_by is None:
        job.ended_by = StopCause.TIME_LIMIT if timed_out else StopCause.MAX_TRIALS
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
        f"{why} ({job.trials_failed} failed, {job.trials_diverged} diverged"
        + (f", {job.trials_pruned} pruned)" if job.trials_pruned else ")"),
    )


def finalize_job(session: Session, job: Job, status: JobStatus, error: str | None = None) -> None:
    """Final state, under the job lock: ranks 1..k on the stored models, counters,
    ``finished_at``; trials still active are closed; Hyperband checkpoints are deleted."""
    now = utcnow()
    closed = TrialStatus.CANCELLED if status is JobStatus.CANCELLED else TrialStatus.FAILED
    search.close_active(session, job.id, closed, error or f"job {status.value}")
    artifacts.delete_checkpoints(session, job.id)
    session.flush()
    refresh_counters(session, job)
    # the confirmed configurations' models first, by their means: each one's best run, then
    # the others by score
    artifacts.rank_first(session, job.id, [runs[0] for _, _, runs in _confirmed(session, job)])
    artifacts.rank_models(session, job, int((job.spec.get("search") or {}).get("top_k") or 1))
    job.status = status
    job.error = error
    if status is JobStatus.CANCELLED:
        job.ended_by = StopCause.CANCELLED
    job.finished_at = now
    job.heartbeat_at = now


@retried("end a job")
def finish_job(job_id: str, status: JobStatus, error: str | None = None) -> None:
    """Finalize a job in a transaction of its own (no-op if it is already final)."""
    with session_scope() as session:
        job = lock_job(session, job_id)
        if job is not None and not job.status.is_final:
            finalize_job(session, job, status, error)


def fail_job(job_id: str, error: str) -> None:
    """Mark a job failed unless it already reached a final state."""
    finish_job(job_id, JobStatus.FAILED, error)


def _confirmed(session: Session, job: Job) -> list[tuple[int, float, list[int]]]:
    """The job's confirmed configurations (``confirm.confirmed``), best mean first; none
    without ``search.confirm``."""
    wanted = (job.spec.get("search") or {}).get("confirm")
    if not wanted:
        return []
    return confirm.confirmed(session, job, int(wanted["top_k"]), int(wanted["seeds"]))


def count_results(job: Job, ended: Sequence[Any]) -> None:
    """Under the job's lock: add results folded just now to the job's counters and best trial
    (each result is folded once; ``refresh_counters`` recounts from the rows)."""
    for trial in ended:
        if trial.status is TrialStatus.COMPLETED:
            job.trials_completed += 1
            if trial.confirms is not None:
                continue  # a confirmation run counts in its configuration's mean, at the end
            if trial.score is not None and job.direction.better(trial.score, job.best_score):
                job.best_trial_number, job.best_score = trial.number, trial.score
            elif trial.score is not None and trial.score == job.best_score:
                job.best_trial_number = min(job.best_trial_number or trial.number, trial.number)
        elif trial.status is TrialStatus.FAILED:
            job.trials_failed += 1
        elif trial.status is TrialStatus.DIVERGED:
            job.trials_diverged += 1
        elif trial.status is TrialStatus.PRUNED:
            job.trials_pruned += 1


def refresh_counters(session: Session, job: Job) -> None:
    """Recount trials by status and pick the best completed one."""
    counts = leaderboard.counts_by_status(session, job.id)
    job.trials_completed = counts.get(TrialStatus.COMPLETED, 0)
    job.trials_failed = counts.get(TrialStatus.FAILED, 0)
    job.trials_diverged = counts.get(TrialStatus.DIVERGED, 0)
    job.trials_pruned = counts.get(TrialStatus.PRUNED, 0)
    best = leaderboard.best_completed(session, job)
    job.best_trial_number, job.best_score = best if best else (None, None)
    means = _confirmed(session, job)
    if means:  # the best mean over its runs, not a lucky seed
        job.best_trial_number, job.best_score = means[0][0], means[0][1]
