"""The reaper's queries: trials whose worker was lost, messages a broker lost, jobs nobody
dispatches any more, cancelled jobs to settle.

None of them waits for a row another session holds (``FOR UPDATE SKIP LOCKED``; SQLite has one
writer at a time and no row locks): a frozen holder of a job's lock delays nothing but itself.

Only a real loss of a worker counts as an attempt: a pool process that is gone, or a lease not
renewed for ``stale_after_s`` while the database was up. After any database outage the reaper
leaves stale leases alone for one lease period (``database_recovered`` marker), which gives every
live worker time to renew its lease first.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.engine import session_scope
from db.models import Job, ServiceMarker, Trial, TrialStatus
from db.repositories.jobs import ACTIVE_JOB_STATUSES, lock_job, settle_job
from db.repositories.trials import ACTIVE
from db.transient import retried
from db.values import as_utc, utcnow

#: when a worker last saw the database come back after an outage.
DATABASE_RECOVERED = "database_recovered"


@retried("note that the database is back")
def note_database_recovered(at: datetime) -> None:
    """Every reaper leaves stale leases alone until one lease period after ``at``."""
    with session_scope() as session:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        insert = dialect.insert(ServiceMarker).values(name=DATABASE_RECOVERED, at=at)
        session.execute(
            insert.on_conflict_do_update(
                index_elements=["name"],
                set_={"at": insert.excluded.at},
                where=ServiceMarker.at < insert.excluded.at,
            )
        )


def _marker(session: Session, name: str) -> datetime | None:
    return as_utc(session.scalar(select(ServiceMarker.at).where(ServiceMarker.name == name)))


@retried("read when the database last came back")
def database_recovered_at() -> datetime | None:
    """When a worker last saw the database come back after an outage (None: never)."""
    with session_scope() as session:
        return _marker(session, DATABASE_RECOVERED)


def _same(column: Any, value: Any) -> Any:
    """``column`` still holds ``value`` (NULL included)."""
    return column.is_(None) if value is None else column == value


def _skip_locked(stmt, *of):  # type: ignore[no-untyped-def]
    return stmt.with_for_update(skip_locked=True, of=of or None)


@retried("requeue trials of lost workers")
def requeue_lost_trials(
    stale_after_s: float, dead_workers: Mapping[str, str], check_leases: bool = True
) -> list[int]:
    """Running trials whose worker is lost go back to ``waiting``; their ids are returned, to be
    sent again. A worker is lost when it is in ``dead_workers`` (``name -> cause``: its pool
    process is gone), or, if ``check_leases``, when its lease is older than ``stale_after_s``.
    The attempt counts, and ``failure_reason`` says why it was lost. Each row is changed only
    if its lease is still the one read (a trial that just beat is left alone)."""
    now = utcnow()
    cutoff = now - timedelta(seconds=stale_after_s)
    lost = [Trial.worker.in_(sorted(dead_workers))]
    if check_leases:
        lost += [Trial.heartbeat_at.is_(None), Trial.heartbeat_at < cutoff]
    requeued: list[int] = []
    with session_scope() as session:
        rows = session.execute(
            _skip_locked(
                select(Trial.id, Trial.worker, Trial.lease, Trial.heartbeat_at, Trial.attempts)
                .where(Trial.status == TrialStatus.RUNNING, or_(*lost))
                .order_by(Trial.id)
            )
        ).all()
        for row in rows:
            if row.worker in dead_workers:
                cause = dead_workers[row.worker]
            else:
                beat = as_utc(row.heartbeat_at)
                silent = (now - beat).total_seconds() if beat else stale_after_s
                cause = (
                    f"its worker {row.worker} did not renew the lease for {silent:.0f} s "
                    "while the database was up"
                )
            result = session.execute(
                update(Trial)
                .where(
                    Trial.id == row.id,
                    Trial.status == TrialStatus.RUNNING,
                    _same(Trial.lease, row.lease),
                    _same(Trial.heartbeat_at, row.heartbeat_at),
                )
                .values(
                    status=TrialStatus.WAITING,
                    worker=None,
                    lease=None,
                    heartbeat_at=None,
                    release_requested=False,
                    enqueued_at=now,
                    failure_reason=f"attempt {row.attempts} lost: {cause}",
                )
                .execution_options(synchronize_session=False)
            )
            if result.rowcount == 1:
                requeued.append(row.id)
    return requeued


@retried("find lost trial messages")
def resend_waiting_trials(stale_after_s: float) -> list[int]:
    """Waiting trials whose message was sent more than ``stale_after_s`` ago and never started
    (lost by a broker without redelivery, or by a flushed Redis): bump ``enqueued_at`` and
    return them, to be sent again. A duplicate message is harmless (the claim is a CAS)."""
    now = utcnow()
    cutoff = now - timedelta(seconds=stale_after_s)
    with session_scope() as session:
        ids = list(
            session.scalars(
                _skip_locked(
                    select(Trial.id)
                    .join(Job, Job.id == Trial.job_id)
                    .where(
                        Trial.status == TrialStatus.WAITING,
                        or_(Trial.enqueued_at.is_(None), Trial.enqueued_at < cutoff),
                        Job.status.in_(ACTIVE_JOB_STATUSES),
                    ),
                    Trial,
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


@retried("find jobs nobody dispatches")
def jobs_to_dispatch(stale_after_s: float) -> list[str]:
    """Jobs that are not final, not cancelled, have no active trial and saw no dispatch for
    ``stale_after_s`` (their dispatch message was lost, or a dispatch gave up while the
    database was away). Their ``heartbeat_at`` (last dispatch) is bumped so each is re-sent at
    most once per ``stale_after_s``."""
    now = utcnow()
    cutoff = now - timedelta(seconds=stale_after_s)
    active = select(Trial.id).where(Trial.job_id == Job.id, Trial.status.in_(ACTIVE)).exists()
    with session_scope() as session:
        ids = list(
            session.scalars(
                _skip_locked(
                    select(Job.id).where(
                        Job.status.in_(ACTIVE_JOB_STATUSES),
                        Job.cancel_requested.is_(False),
                        ~active,
                        or_(
                            Job.heartbeat_at < cutoff,
                            Job.heartbeat_at.is_(None) & (Job.created_at < cutoff),
                        ),
                    )
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


@retried("find results nobody folded")
def jobs_with_unfolded_results(older_than_s: float) -> list[str]:
    """Active jobs with a result that waits more than ``older_than_s`` to be folded into their
    search (its worker found the search taken, and the holder stopped before it: rare)."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    ended = [s for s in TrialStatus if not s.is_active]
    with session_scope() as session:
        return list(
            session.scalars(
                select(Trial.job_id)
                .join(Job, Job.id == Trial.job_id)
                .where(
                    Job.status.in_(ACTIVE_JOB_STATUSES),
                    Trial.reported.is_(False),
                    Trial.status.in_(ended),
                    Trial.finished_at < cutoff,
                )
                .distinct()
            )
        )


@retried("find cancelled jobs")
def cancelled_jobs() -> list[str]:
    """Jobs cancelled but not final yet."""
    with session_scope() as session:
        return list(
            session.scalars(
                select(Job.id).where(
                    Job.status.in_(ACTIVE_JOB_STATUSES), Job.cancel_requested.is_(True)
                )
            )
        )


@retried("settle a cancelled job")
def settle_cancelled_job(job_id: str) -> bool:
    """Cancel the job's waiting trials now, and end it if none runs (a running one ends the job
    itself at its next epoch). Skipped if another session holds the job. True if it ended."""
    with session_scope() as session:
        job = lock_job(session, job_id, skip_locked=True)
        if job is None or job.status.is_final:
            return False
        settle_job(session, job)
        return job.status.is_final


@retried("list a worker's running trials")
def running_workers(prefix: str) -> list[str]:
    """Worker names (``host:main_pid:child_pid``) holding running trials, starting ``prefix``."""
    with session_scope() as session:
        return [
            str(name)
            for name in session.scalars(
                select(Trial.worker).where(
                    Trial.status == TrialStatus.RUNNING, Trial.worker.startswith(prefix)
                )
            )
        ]
