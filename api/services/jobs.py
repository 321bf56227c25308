"""Jobs: validate and submit a spec, list, read, cancel and delete jobs."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.orm import Session

from api import quotas
from api.errors import (
    BrokerUnavailableError,
    ConflictError,
    InputValidationError,
    NotFoundError,
    quoted_id,
)
from api.queue import JobQueue
from api.schemas import JobPage, JobPublic, JobSplitRows, JobSubmitted
from api.services import API_PREFIX, transaction
from db.models import Job, JobStatus
from db.repositories import jobs, uploads
from db.settings import Settings
from search_spaces.advice import advise
from search_spaces.datasets import UPLOAD_PREFIX
from search_spaces.field_names import did_you_mean
from search_spaces.schema import JobSpec

log = logging.getLogger(__name__)


def job_or_404(session: Session, job_id: str, owner: str) -> Job:
    """``owner``'s job; 404 for an unknown id or another owner's job (its existence is not for
    this caller to learn)."""
    job = jobs.get_owned_job(session, job_id, owner)
    if job is None:
        raise NotFoundError(f"job {quoted_id(job_id)} not found")
    return job


def spec_warnings(spec: JobSpec) -> list[dict[str, Any]]:
    """The advice on a spec, as stored on the job: ``[{code, message, fields}]``."""
    return [a.model_dump(mode="json") for a in advise(spec)]


def validate_spec(settings: Settings, owner: str, body: Any) -> JobSpec:
    """The submitted JSON as a spec; an ``upload:<id>`` dataset (of ``owner``) is resolved from
    the database, so task- and shape-dependent rules apply to uploads as to built-ins. 422
    otherwise."""

    def validate(session: Session) -> JobSpec:
        return JobSpec.model_validate(
            body, context={"datasets": uploads.dataset_resolver(session, owner)}
        )

    try:
        return transaction(settings, "validate a spec", validate)
    except ValidationError as exc:
        errors = [_with_suggestion(e) for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def _with_suggestion(error: Any) -> dict[str, Any]:
    """A spec error under ``body``; an unknown field's message names the one probably meant."""
    error = {**error, "loc": ("body", *error["loc"])}
    if error["type"] == "extra_forbidden":
        meant = did_you_mean(JobSpec, error["loc"][1:])
        if meant is not None:
            error["msg"] = f"{error['msg']}; did you mean {meant!r}?"
    return error


def submit_job(settings: Settings, queue: JobQueue, owner: str, spec: JobSpec) -> JobSubmitted:
    """Store the job (within ``owner``'s quotas: 429), then enqueue it; if the broker cannot
    take it, the row is removed (503). The stored spec records the defaults chosen for it."""
    spec = spec.with_recorded_defaults()
    warnings = spec_warnings(spec)

    def store(session: Session) -> str:
        quotas.check_new_job(session, settings, owner, spec.trial_budget)
        if spec.dataset.info.source == "upload":
            # Under the upload's row lock, as DELETE /datasets takes it: a concurrent delete
            # either sees this job (409) or wins, and then this submission fails (422).
            upload_id = spec.dataset.name.removeprefix(UPLOAD_PREFIX)
            if uploads.get_upload(session, upload_id, owner, lock=True) is None:
                raise InputValidationError(
                    "dataset.name", f"no uploaded dataset {spec.dataset.name!r}", None, "spec_rule"
                )
        job = Job(
            owner=owner,
            name=spec.name,
            status=JobStatus.QUEUED,
            spec=spec.model_dump(mode="json"),
            warnings=warnings,
            algorithm=spec.search.algorithm,
            dataset=spec.dataset.name,
            objective=spec.objective,
            direction=spec.direction,
            max_trials=spec.trial_budget,
        )
        return jobs.add_job(session, job).id

    job_id = transaction(settings, "submit a job", store)
    try:
        queue.enqueue_job(job_id)
    except BrokerUnavailableError:
        transaction(settings, "drop a job not enqueued", lambda s: jobs.delete_job(s, job_id))
        raise
    return JobSubmitted.model_validate(
        {
            "id": job_id,
            "status": JobStatus.QUEUED,
            "warnings": warnings,
            "url": f"{API_PREFIX}/jobs/{job_id}",
        }
    )


def list_jobs(
    settings: Settings, owner: str, status: JobStatus | None, limit: int, offset: int
) -> JobPage:
    """A page of ``owner``'s jobs, newest first."""

    def read(session: Session) -> JobPage:
        rows, total = jobs.list_jobs(
            session, owner=owner, status=status, limit=limit, offset=offset
        )
        items = [JobPublic.model_validate(job) for job in rows]
        return JobPage(items=items, total=total, limit=limit, offset=offset)

    return transaction(settings, "list jobs", read)


def get_job(settings: Settings, owner: str, job_id: str) -> JobPublic:
    """One of ``owner``'s jobs."""
    return transaction(
        settings,
        "read a job",
        lambda session: JobPublic.model_validate(job_or_404(session, job_id, owner)),
    )


def delete_job(settings: Settings, owner: str, job_id: str) -> None:
    """Delete a final job with its trials, epochs and models; 409 while it is queued or running."""

    def delete(session: Session) -> None:
        job = job_or_404(session, job_id, owner)
        if not job.status.is_final:
            raise ConflictError(
                f"job {job_id} is {job.status.value}; cancel it first, then delete it"
            )
        if not jobs.delete_final_job(session, job_id):
            raise ConflictError(
                f"job {job_id} still has a trial stopping; try again in a few seconds"
            )

    transaction(settings, "delete a job", delete)


def cancel_job(settings: Settings, queue: JobQueue, owner: str, job_id: str) -> JobPublic:
    """Queued: cancelled now. Running: flagged (the worker stops at its next epoch). Final: 409.

    The Celery task is revoked too, best effort (the DB flag is what the worker obeys).
    """

    def cancel(session: Session) -> None:
        job = job_or_404(session, job_id, owner)
        if job.status.is_final or not (
            jobs.cancel_queued_job(session, job_id) or jobs.request_job_cancel(session, job_id)
        ):
            session.refresh(job)  # it may have finished between the read and the update
            raise ConflictError(
                f"job {job_id} is already {job.status.value}; it cannot be cancelled"
            )

    transaction(settings, "cancel a job", cancel)
    if not queue.revoke(job_id):
        log.info("could not revoke the task of job %s; the worker will see the DB flag", job_id)
    return get_job(settings, owner, job_id)


def get_split(settings: Settings, owner: str, job_id: str) -> JobSplitRows:
    """The rows job ``job_id`` trained and validated on; 409 before its first trial loaded the
    data."""

    def read(session: Session) -> JobSplitRows:
        job_or_404(session, job_id, owner)
        split = jobs.get_split(session, job_id)
        if split is None:
            raise ConflictError(
                f"job {quoted_id(job_id)} has not loaded its data yet: its split is recorded "
                "when its first trial starts"
            )
        return JobSplitRows(
            rows_total=split.rows_total,
            train=np.frombuffer(split.train_rows, dtype="<i4").tolist(),
            validation=np.frombuffer(split.validation_rows, dtype="<i4").tolist(),
        )

    return transaction(settings, "read a job's split", read)
