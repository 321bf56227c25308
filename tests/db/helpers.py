"""Rows for the storage contract tests, written through the repositories (no TensorFlow)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from db.engine import session_scope
from db.models import Epoch, Job, Trial
from db.repositories import jobs, search, trials
from db.repositories.trials import ClaimedTrial
from db.values import utcnow


def new_job(direction: str = "max", spec: dict[str, Any] | None = None, **fields: Any) -> str:
    """A queued job (no search algorithm state) with the columns the storage reads."""
    with session_scope() as session:
        job = Job(
            spec=spec or {"search": {}},
            algorithm="random",
            dataset="digits",
            objective="val_accuracy" if direction == "max" else "val_loss",
            direction=direction,
            max_trials=10,
            **fields,
        )
        return jobs.add_job(session, job).id


def waiting(job_id: str, count: int = 1, first: int = 0) -> list[int]:
    """``count`` new waiting trials, numbered from ``first``."""
    with session_scope() as session:
        rows = [
            search.add_waiting_trial(session, job_id, n, {"units": 8 * (n + 1)}, utcnow())
            for n in range(first, first + count)
        ]
        session.flush()
        return [t.id for t in rows]


def request_cancel(job_id: str) -> None:
    """A client asked to cancel the job (after some of its trials started)."""
    with session_scope() as session:
        session.execute(update(Job).where(Job.id == job_id).values(cancel_requested=True))


def claimed(job_id: str, worker: str = "host:1:2") -> ClaimedTrial:
    """A new trial of the job, claimed by ``worker``."""
    (trial_id,) = waiting(job_id, 1, first=trial_count(job_id))
    claim = trials.claim_trial(trial_id, worker)
    assert claim is not None
    return claim


def trial_count(job_id: str) -> int:
    with session_scope() as session:
        return len(session.scalars(select(Trial.id).where(Trial.job_id == job_id)).all())


def trial(trial_id: int) -> Trial:
    with session_scope() as session:
        return session.get_one(Trial, trial_id)


def job(job_id: str) -> Job:
    with session_scope() as session:
        return session.get_one(Job, job_id)


def epochs(trial_id: int) -> list[tuple[int, int]]:
    with session_scope() as session:
        rows = session.execute(
            select(Epoch.execution, Epoch.epoch)
            .where(Epoch.trial_id == trial_id)
            .order_by(Epoch.execution, Epoch.epoch)
        ).all()
        return [(r.execution, r.epoch) for r in rows]


def record(claim: ClaimedTrial, epoch: int, execution: int = 0) -> bool:
    """Record one epoch of the claimed attempt; False if the lease was lost."""
    control = trials.record_epoch(
        claim.id, claim.lease, execution, epoch, {"loss": 1.0 / (epoch + 1)}, 0.01, 0.1
    )
    return control is not trials.Control.LEASE_LOST


def age(
    trial_id: int, *, heartbeat_s: float | None = None, enqueued_s: float | None = None
) -> None:
    """Make a trial's lease (heartbeat) and/or its message (enqueued) that many seconds old."""
    values = {}
    if heartbeat_s is not None:
        values["heartbeat_at"] = utcnow() - timedelta(seconds=heartbeat_s)
    if enqueued_s is not None:
        values["enqueued_at"] = utcnow() - timedelta(seconds=enqueued_s)
    with session_scope() as session:
        session.execute(update(Trial).where(Trial.id == trial_id).values(**values))
