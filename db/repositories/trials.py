"""Trials: a worker's claim, lease, epochs and result; a job's trials under its lock.

A claim is a compare-and-set (``waiting`` -> ``running``) that hands out a fresh lease token.
Every later write of that attempt (heartbeat, epoch, result, hand-back) names the token in its
``WHERE``: a worker whose trial was taken back (its lease went stale and the reaper requeued it)
writes nothing over the attempt that replaced it.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.orm import Session

from db.engine import session_scope
from db.models import Epoch, Job, JobStatus, Trial, TrialStatus
from db.repositories.artifacts import ArtifactPayload
from db.transient import retried
from db.values import json_safe, new_id, utcnow

ACTIVE = (TrialStatus.WAITING, TrialStatus.RUNNING)


# --- a worker's attempt ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimedTrial:
    """A trial this worker now runs, and the lease its writes must name."""

    id: int
    job_id: str
    number: int
    hyperparameters: dict[str, Any]
    attempts: int
    lease: str
    #: why the previous attempt was lost, if one was (set by the reaper).
    lost_before: str | None = None
    #: a confirmation run's seed (``search.confirm``); None for the search's own trials.
    confirm_seed: int | None = None


def claim_trial(trial_id: int, worker: str) -> ClaimedTrial | None:
    """Compare-and-set ``waiting`` -> ``running`` with a fresh lease; None if the trial is not
    waiting (a duplicate delivery, another worker has it, or it is final) or its job is being
    cancelled. A re-run starts
    clean: the epochs of an earlier, interrupted attempt are deleted. One statement (``UPDATE ...
    RETURNING``) on a first claim."""
    return _claim(trial_id, worker, new_id())


@retried("claim a trial")
def _claim(trial_id: int, worker: str, lease: str) -> ClaimedTrial | None:
    now = utcnow()
    columns = (
        Trial.job_id,
        Trial.number,
        Trial.hyperparameters,
        Trial.attempts,
        Trial.failure_reason,
        Trial.confirm_seed,
    )
    with session_scope() as session:
        row = session.execute(
            update(Trial)
            .where(
                Trial.id == trial_id,
                Trial.status == TrialStatus.WAITING,
                # a cancelled job's waiting trials never start (its settling cancels them)
                ~select(Job.id)
                .where(Job.id == Trial.job_id, Job.cancel_requested.is_(True))
                .exists(),
            )
            .values(
                status=TrialStatus.RUNNING,
                worker=worker,
                lease=lease,
                heartbeat_at=now,
                started_at=now,
                finished_at=None,
                attempts=Trial.attempts + 1,
                release_requested=False,
                epochs_run=0,
            )
            .returning(*columns)
            .execution_options(synchronize_session=False)
        ).one_or_none()
        if row is None:
            # Not ours, unless this claim's own commit landed in an earlier try whose answer
            # the connection lost.
            row = session.execute(
                select(*columns).where(Trial.id == trial_id, Trial.lease == lease)
            ).one_or_none()
            if row is None:
                return None
        elif row.attempts > 1:  # a re-run starts clean
            session.execute(delete(Epoch).where(Epoch.trial_id == trial_id))
        return ClaimedTrial(
            trial_id,
            row.job_id,
            row.number,
            row.hyperparameters,
            row.attempts,
            lease,
            row.failure_reason,
            row.confirm_seed,
        )


def _owned(trial_id: int, lease: str) -> tuple[ColumnElement[bool], ...]:
    return (Trial.id == trial_id, Trial.lease == lease, Trial.status == TrialStatus.RUNNING)


def heartbeat(trial_id: int, lease: str) -> bool:
    """Renew the trial's lease; False if it is no longer ours (taken back, or final). Not
    retried here: the heartbeat thread tries again at its next beat."""
    with session_scope() as session:
        result = session.execute(
            update(Trial)
            .where(*_owned(trial_id, lease))
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


def _control(session: Session, trial_id: int, lease: str) -> Control:
    """What the trial should do now: one query."""
    row = session.execute(
        select(
            Trial.status,
            Trial.lease,
            Trial.release_requested,
            Job.cancel_requested,
            Job.status.label("job_status"),
        )
        .join(Job, Job.id == Trial.job_id)
        .where(Trial.id == trial_id)
    ).one_or_none()
    if row is None or row.status != TrialStatus.RUNNING or row.lease != lease:
        return Control.LEASE_LOST
    if row.cancel_requested or JobStatus(row.job_status).is_final:
        return Control.CANCEL
    if row.release_requested:
        return Control.RELEASE
    return Control.GO_ON


@retried("record an epoch")
def record_epoch(
    trial_id: int,
    lease: str,
    execution: int,
    epoch: int,
    metrics: dict[str, Any],
    learning_rate: float | None,
    duration_s: float,
    health: dict[str, Any] | None = None,
) -> Control:
    """Write one epoch row (with its probe's ``health`` record, if any) while the lease is
    ours (checked and counted in the same transaction), and say what the trial should do next:
    ``LEASE_LOST`` (nothing written), ``CANCEL``, ``RELEASE`` or ``GO_ON``. Idempotent: an
    epoch already written (by a try whose answer was lost) is not written twice."""
    with session_scope() as session:
        control = _control(session, trial_id, lease)
        if control is Control.LEASE_LOST:
            return control
        written = session.scalar(
            select(Epoch.id).where(
                Epoch.trial_id == trial_id, Epoch.execution == execution, Epoch.epoch == epoch
            )
        )
        if written:
            return control
        counted = session.execute(
            update(Trial)
            .where(*_owned(trial_id, lease))
            .values(epochs_run=Trial.epochs_run + 1)
            .execution_options(synchronize_session=False)
        )
        if counted.rowcount != 1:
            return Control.LEASE_LOST
        session.add(
            Epoch(
                trial_id=trial_id,
                execution=execution,
                epoch=epoch,
                metrics=json_safe(metrics),
                learning_rate=learning_rate,
                duration_s=duration_s,
                health=None if health is None else json_safe(health),
            )
        )
        return control


@retried("hand a trial back to the queue")
def release_trial(trial_id: int, lease: str) -> bool:
    """Hand a running trial back to the queue (``waiting``) WITHOUT counting the attempt: the
    worker is shutting down, or the database stayed away past the retry budget. False if the
    lease was no longer ours."""
    with session_scope() as session:
        result = session.execute(
            update(Trial)
            .where(*_owned(trial_id, lease))
            .values(
                status=TrialStatus.WAITING,
                worker=None,
                lease=None,
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


@retried("ask a worker's trials to go back to the queue")
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


@dataclass
class TrialResult:
    """What a worker reports for a trial it ran."""

    status: TrialStatus
    score: float | None = None
    best_epoch: int | None = None
    metrics: dict[str, float] | None = None
    parameter_count: int | None = None
    failure_reason: str | None = None
    duration_s: float | None = None
    fit_duration_s: float | None = None
    health: dict[str, Any] | None = None
    #: pruned by the job's pruner: at this epoch (from 1), against this value
    pruned_epoch: int | None = None
    pruned_against: float | None = None
    artifact: ArtifactPayload | None = None
    checkpoint: bytes | None = None

    @property
    def finite_score(self) -> float | None:
        """The score if it is a finite number (what may be stored and ranked)."""
        score = self.score
        return score if score is not None and math.isfinite(score) else None


def record_result(session: Session, trial_id: int, lease: str, result: TrialResult) -> bool:
    """Close the trial with its result, in ONE statement conditional on the lease: False, and
    nothing written, if the trial was taken back from this worker. The result is not folded into
    the job's search yet (``reported`` false: see ``unreported``)."""
    written = session.execute(
        update(Trial)
        .where(*_owned(trial_id, lease))
        .values(
            status=result.status,
            score=result.finite_score,
            best_epoch=result.best_epoch,
            metrics=json_safe(result.metrics) if result.metrics is not None else None,
            parameter_count=result.parameter_count,
            failure_reason=result.failure_reason,
            finished_at=utcnow(),
            duration_s=result.duration_s,
            fit_duration_s=result.fit_duration_s,
            health=json_safe(result.health) if result.health is not None else None,
            pruned_epoch=result.pruned_epoch,
            pruned_against=_finite(result.pruned_against),
            release_requested=False,
            reported=False,
        )
        .execution_options(synchronize_session=False)
    )
    return written.rowcount == 1


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def result_recorded(session: Session, trial_id: int, lease: str) -> bool:
    """Whether the attempt with ``lease`` has its result recorded (by a try whose commit answer
    was lost): the trial ended, and its lease is still that attempt's."""
    ended = [s for s in TrialStatus if not s.is_active]
    found = session.scalar(
        select(Trial.id).where(Trial.id == trial_id, Trial.lease == lease, Trial.status.in_(ended))
    )
    return found is not None
