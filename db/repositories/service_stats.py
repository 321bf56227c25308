"""The service as a whole, for ``/metrics`` and ``hpsearch status``: jobs and trials by status,
how long trials and epochs take, which workers are alive, what waits in the queue. Each is one
aggregate query over every owner's rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from db.models import Epoch, Job, JobStatus, Trial, TrialStatus
from db.values import as_utc


def _counts(session: Session, column: Any, statuses: Sequence[Any]) -> dict[str, int]:
    rows = dict(session.execute(select(column, func.count()).group_by(column)).all())
    return {status.value: int(rows.get(status, 0)) for status in statuses}


def job_counts(session: Session) -> dict[str, int]:
    """Jobs by status (every status, zero included)."""
    return _counts(session, Job.status, list(JobStatus))


def trial_counts(session: Session) -> dict[str, int]:
    """Trials by status (every status, zero included): waiting and running, and how the
    others ended."""
    return _counts(session, Trial.status, list(TrialStatus))


@dataclass(frozen=True)
class Histogram:
    """Cumulative counts of values at or below each bucket's bound, their count and sum."""

    buckets: list[tuple[float, int]]
    count: int
    total: float


def duration_histogram(session: Session, column: Any, bounds: Sequence[float]) -> Histogram:
    """How ``column`` (seconds, nulls left out) spreads over ``bounds``: one query."""
    row = session.execute(
        select(
            func.count(column),
            func.coalesce(func.sum(column), 0.0),
            *(func.sum(case((column <= bound, 1), else_=0)) for bound in bounds),
        )
    ).one()
    count, total, *below = row
    return Histogram([(b, int(n or 0)) for b, n in zip(bounds, below, strict=True)], count, total)


def trial_durations(session: Session, bounds: Sequence[float]) -> Histogram:
    """Training time of every trial that ended."""
    return duration_histogram(session, Trial.duration_s, bounds)


def epoch_durations(session: Session, bounds: Sequence[float]) -> Histogram:
    """Time of every recorded epoch."""
    return duration_histogram(session, Epoch.duration_s, bounds)


@dataclass(frozen=True)
class RunningProcess:
    """A pool process running trials: how many, and its newest lease renewal."""

    running: int
    last_beat: datetime | None


def running_processes(session: Session) -> dict[str, RunningProcess]:
    """Each pool process running trials (``host:main_pid:child_pid``)."""
    rows = session.execute(
        select(Trial.worker, func.count(), func.max(Trial.heartbeat_at))
        .where(Trial.status == TrialStatus.RUNNING, Trial.worker.is_not(None))
        .group_by(Trial.worker)
    ).all()
    return {worker: RunningProcess(int(n), as_utc(beat)) for worker, n, beat in rows}


@dataclass(frozen=True)
class RunningJob:
    """A job with trials running now."""

    job_id: str
    name: str | None
    owner: str
    running: int
    done: int
    max_trials: int


def running_jobs(session: Session) -> list[RunningJob]:
    """The jobs with running trials, the most running first."""
    running = func.count(Trial.id).label("running")
    rows = session.execute(
        select(
            Job.id,
            Job.name,
            Job.owner,
            running,
            Job.trials_done,
            Job.max_trials,
        )
        .join(Trial, Trial.job_id == Job.id)
        .where(Trial.status == TrialStatus.RUNNING)
        .group_by(Job.id)
        .order_by(running.desc(), Job.id)
    ).all()
    return [RunningJob(*row) for row in rows]


def oldest_waiting(session: Session) -> datetime | None:
    """When the trial that has waited longest was (last) sent to the queue."""
    return as_utc(
        session.scalar(
            select(func.min(Trial.enqueued_at)).where(Trial.status == TrialStatus.WAITING)
        )
    )
