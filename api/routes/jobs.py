"""Jobs: submit a spec, list, read, cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status

from api.auth import PrincipalDep
from api.deps import Offset, QueueDep, SettingsDep
from api.health_schemas import JobHealth
from api.json_body import JsonRoute
from api.schemas import JobPage, JobPublic, JobSplitRows, JobSubmitted, error_responses
from api.services import health as health_services
from api.services import jobs as services
from api.services import studies as study_services
from api.study_schemas import StudyResult
from db.models import JobStatus

router = APIRouter(prefix="/jobs", tags=["jobs"], route_class=JsonRoute)

JobId = str


async def json_body(request: Request) -> Any:
    """The JSON body, read strictly (``api.json_body``): the spec is validated by the service,
    which can resolve uploaded datasets (pydantic validation context) where FastAPI's own body
    parsing could not."""
    return await request.json()


#: the request body's schema is the spec's (registered in the components by ``create_app``).
SPEC_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobSpec"}}},
    }
}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobSubmitted,
    responses=error_responses(413, 415, 422, 429, 503),
    openapi_extra=SPEC_BODY,
)
def submit_job(
    body: Annotated[Any, Depends(json_body)],
    settings: SettingsDep,
    queue: QueueDep,
    principal: PrincipalDep,
    response: Response,
) -> JobSubmitted:
    """Validate a spec, store the job and queue it. Warnings are advice, never errors.
    429 when the caller is at one of its quotas."""
    spec = services.validate_spec(settings, principal.owner, body)
    submitted = services.submit_job(settings, queue, principal.owner, spec)
    response.headers["Location"] = submitted.url
    return submitted


@router.get("", response_model=JobPage)
def list_jobs(
    settings: SettingsDep,
    principal: PrincipalDep,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Offset = 0,
) -> JobPage:
    """The caller's jobs, newest first, optionally only those with ``status``."""
    return services.list_jobs(settings, principal.owner, status, limit, offset)


@router.get("/{job_id}", response_model=JobPublic, responses=error_responses(404))
def get_job(job_id: JobId, settings: SettingsDep, principal: PrincipalDep) -> JobPublic:
    """One job: state, progress, best trial, warnings."""
    return services.get_job(settings, principal.owner, job_id)


@router.delete(
    "/{job_id}", status_code=status.HTTP_204_NO_CONTENT, responses=error_responses(404, 409)
)
def delete_job(job_id: JobId, settings: SettingsDep, principal: PrincipalDep) -> Response:
    """Delete an ended job with its trials, epochs and models (frees stored bytes); 409 while
    it is queued or running."""
    services.delete_job(settings, principal.owner, job_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{job_id}/cancel", response_model=JobPublic, responses=error_responses(404, 409))
def cancel_job(
    job_id: JobId, settings: SettingsDep, queue: QueueDep, principal: PrincipalDep
) -> JobPublic:
    """Cancel a queued job at once, or ask a running one to stop after its current epoch."""
    return services.cancel_job(settings, queue, principal.owner, job_id)


@router.get("/{job_id}/health", response_model=JobHealth, responses=error_responses(404))
def get_health(job_id: JobId, settings: SettingsDep, principal: PrincipalDep) -> JobHealth:
    """The job's training health: how many of its trials got each verdict (``healthy``,
    ``collapsed``, ``vanishing_gradients``...; each trial's own are on the trial), and the
    hyperparameter values that go with a verdict, as advice ("9 of 9 trials with
    optimizer=adadelta collapsed to a constant prediction: ...")."""
    return health_services.job_health(settings, principal.owner, job_id)


@router.get("/{job_id}/study", response_model=StudyResult, responses=error_responses(404, 409))
def get_study(job_id: JobId, settings: SettingsDep, principal: PrincipalDep) -> StudyResult:
    """A technique study's table (a job submitted with ``study``): per variant the mean, std
    and confidence interval over its seeds of the objective, fit time and epochs to best; its
    difference to the baseline variant (Welch's test and interval); a plain reading of which
    differences exceed the seeds' noise; its mean learning curve. 409 for a search job."""
    return study_services.job_study(settings, principal.owner, job_id)


@router.get("/{job_id}/split", response_model=JobSplitRows, responses=error_responses(404, 409))
def get_split(job_id: JobId, settings: SettingsDep, principal: PrincipalDep) -> JobSplitRows:
    """Which rows of the dataset the job trained and validated on, to rebuild its split
    exactly; 409 until its first trial has loaded the data."""
    return services.get_split(settings, principal.owner, job_id)
