"""Query helpers the API uses to read and change jobs, trials and model artifacts.

Every function takes an open ``Session``; the caller owns the transaction (``session_scope``).
State changes that race with the workers are compare-and-set ``UPDATE ... WHERE status = ...``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, delete, func, select, text, update
from sqlalchemy.orm import Session, defer, selectinload

from db.models import Job, JobStatus, ModelArtifact, Trial, TrialStatus, UploadedDataset
from search_spaces.datasets import UPLOAD_PREFIX, DatasetInfo, upload_info

#: leaderboard sort keys a client may ask for, and the column each one orders by.
TRIAL_SORT_COLUMNS: dict[str, Any] = {
    "score": Trial.score,
    "number": Trial.number,
    "duration_s": Trial.duration_s,
    "epochs_run": Trial.epochs_run,
    "started_at": Trial.started_at,
}

Order = Literal["asc", "desc"]


def ping(session: Session) -> None:
    """Raise if the database cannot answer ``SELECT 1``."""
    session.execute(text("SELECT 1"))


# --- jobs -----------------------------------------------------------------------------------


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
    active = [s for s in TrialStatus if s.is_active]
    winding_down = select(Trial.id).where(Trial.job_id == job_id, Trial.status.in_(active)).exists()
    result = session.execute(
        delete(Job).where(Job.id == job_id, Job.status.in_(final), ~winding_down)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def get_job(session: Session, job_id: str) -> Job | None:
    """The job with ``job_id``, or None."""
    return session.get(Job, job_id)


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
        .values(status=JobStatus.CANCELLED, cancel_requested=True, finished_at=datetime.now(UTC))
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


# --- trials ---------------------------------------------------------------------------------


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
    if order is None:
        order = ("desc" if job.direction == "max" else "asc") if sort == "score" else "asc"
    where: list[ColumnElement[bool]] = [Trial.job_id == job.id]
    if status is not None:
        where.append(Trial.status == status)
    total = session.scalar(select(func.count()).select_from(Trial).where(*where)) or 0
    direction = column.desc() if order == "desc" else column.asc()
    rows = session.scalars(
        select(Trial)
        .where(*where)
        .order_by(column.is_(None), direction, Trial.number)
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


# --- model artifacts ------------------------------------------------------------------------


def artifact_ranking(session: Session, job: Job) -> list[ModelArtifact]:
    """A job's artifacts, best first, without their content loaded.

    Ranks assigned when the job ended win; while it runs (ranks null) the scores decide.
    """
    rows = list(
        session.scalars(
            select(ModelArtifact)
            .where(ModelArtifact.job_id == job.id)
            .options(defer(ModelArtifact.content))
        ).all()
    )
    sign = -1.0 if job.direction == "max" else 1.0

    def key(row: ModelArtifact) -> tuple[int, float, int]:
        if row.rank is not None:
            return (0, float(row.rank), row.trial_number)
        score = row.score if row.score is not None else float("inf") * sign
        return (1, sign * score, row.trial_number)

    return sorted(rows, key=key)


def artifact_by_rank(session: Session, job: Job, rank: int) -> ModelArtifact | None:
    """The job's ``rank``-th best artifact (1 = best), content deferred, or None."""
    ranking = artifact_ranking(session, job)
    return ranking[rank - 1] if 0 < rank <= len(ranking) else None


def artifact_content(session: Session, artifact_id: int) -> bytes:
    """The ``.keras`` bytes of one artifact."""
    content = session.scalar(select(ModelArtifact.content).where(ModelArtifact.id == artifact_id))
    return content or b""


# --- uploaded datasets --------------------------------------------------------------------------

UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


def get_upload(
    session: Session, upload_id: str, owner: str | None, lock: bool = False
) -> UploadedDataset | None:
    """``owner``'s upload's metadata row (its content deferred); ``None`` for a malformed id or
    another owner's upload. ``owner=None``: any owner's (the workers, whose jobs' specs the API
    checked against their owner at submission).

    ``lock``: hold its row lock (``FOR UPDATE``) until the transaction ends, so that deleting
    an upload and submitting a job on it are serialised.
    """
    if not UPLOAD_ID.fullmatch(upload_id):
        return None
    row = session.get(
        UploadedDataset,
        upload_id,
        options=[defer(UploadedDataset.content)],
        with_for_update=lock,
    )
    return row if row is not None and owner in (None, row.owner) else None


def list_uploads(
    session: Session, owner: str, limit: int, offset: int
) -> tuple[Sequence[UploadedDataset], int]:
    """A page of ``owner``'s uploads, newest first, without their content, and their total."""
    where = UploadedDataset.owner == owner
    total = session.scalar(select(func.count()).select_from(UploadedDataset).where(where)) or 0
    rows = session.scalars(
        select(UploadedDataset)
        .where(where)
        .options(defer(UploadedDataset.content))
        .order_by(UploadedDataset.created_at.desc(), UploadedDataset.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return rows, total


def upload_content(session: Session, upload_id: str) -> bytes | None:
    return session.scalar(select(UploadedDataset.content).where(UploadedDataset.id == upload_id))


def upload_as_info(row: UploadedDataset) -> DatasetInfo:
    return upload_info(row.id, row.task, list(row.input_shape), row.n_classes, row.rows, row.name)


def dataset_resolver(session: Session, owner: str | None) -> Callable[[str], DatasetInfo | None]:
    """``name -> DatasetInfo`` for ``owner``'s ``upload:<id>`` names (any owner's for None): the
    spec's validation context."""

    def resolve(name: str) -> DatasetInfo | None:
        row = get_upload(session, name.removeprefix(UPLOAD_PREFIX), owner)
        return None if row is None else upload_as_info(row)

    return resolve


def active_jobs_using(session: Session, dataset_name: str) -> list[str]:
    """Ids of the queued or running jobs that train on ``dataset_name``."""
    return list(
        session.scalars(
            select(Job.id).where(
                Job.dataset == dataset_name,
                Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]),
            )
        )
    )


def delete_upload(session: Session, upload_id: str) -> None:
    session.execute(delete(UploadedDataset).where(UploadedDataset.id == upload_id))
