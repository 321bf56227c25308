"""Jobs: submit a spec, list, read, cancel."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from api import services
from api.deps import Offset, QueueDep, SettingsDep
from api.schemas import JobCreate, JobPublic, JobSubmitted, Page, error_responses
from db.models import JobStatus

router = APIRouter(prefix="/jobs", tags=["jobs"])

JobId = str


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobSubmitted,
    responses=error_responses(413, 422, 503),
)
def submit_job(
    spec: JobCreate, settings: SettingsDep, queue: QueueDep, response: Response
) -> JobSubmitted:
    """Validate a spec, store the job and queue it. Warnings are advice, never errors."""
    submitted = services.submit_job(settings, queue, spec)
    response.headers["Location"] = submitted.url
    return submitted


@router.get("", response_model=Page[JobPublic])
def list_jobs(
    settings: SettingsDep,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Offset = 0,
) -> Page[JobPublic]:
    """Jobs, newest first, optionally only those with ``status``."""
    return services.list_jobs(settings, status, limit, offset)


@router.get("/{job_id}", response_model=JobPublic, responses=error_responses(404))
def get_job(job_id: JobId, settings: SettingsDep) -> JobPublic:
    """One job: state, progress, best trial, warnings."""
    return services.get_job(settings, job_id)


@router.post("/{job_id}/cancel", response_model=JobPublic, responses=error_responses(404, 409))
def cancel_job(job_id: JobId, settings: SettingsDep, queue: QueueDep) -> JobPublic:
    """Cancel a queued job at once, or ask a running one to stop after its current epoch."""
    return services.cancel_job(settings, queue, job_id)
