"""The live JSON the dashboard's pages poll: a job's version (cheap, polled every second), its
plots and leaderboard when the version moved, importance, chosen trials' curves, the jobs list,
and predictions from the trial page's form. Same keys and owner scoping as the JSON API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.dashboard import live, stream, views
from api.dashboard.assets import accepts_gzip
from api.dashboard.session import DataViewer
from api.dashboard.templating import templates
from api.deps import PredictorDep, SettingsDep, TrialNumber
from api.errors import InputValidationError
from api.schemas import PredictRequest, PredictResponse
from api.services import models as model_services
from db.models import JobStatus
from db.repositories.dashboard import MAX_CURVE_TRIALS

router = APIRouter(prefix="/ui/data", include_in_schema=False)


def _fragment(request: Request, name: str, **context: Any) -> str:
    return templates.get_template(name).render(request=request, **context)


@router.get("/jobs")
def jobs_rows(
    request: Request,
    settings: SettingsDep,
    viewer: DataViewer,
    status: JobStatus | None = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> dict[str, Any]:
    """The jobs table's rows as HTML (the page swaps them in), and the total."""
    view = views.jobs_payload(settings, viewer.owner, status, limit, offset)
    return {"html": _fragment(request, "_jobs_rows.html", view=view), "total": view["total"]}


@router.get("/jobs/{job_id}/version")
def job_version(job_id: str, settings: SettingsDep, viewer: DataViewer) -> dict[str, str]:
    """A token that changes whenever anything the job page shows does."""
    return {"version": live.job_version(settings, viewer.owner, job_id)}


@router.get("/jobs/{job_id}/stream")
def job_stream(
    request: Request,
    job_id: str,
    settings: SettingsDep,
    viewer: DataViewer,
    since: Annotated[str | None, Query(max_length=400)] = None,
) -> StreamingResponse:
    """The job page's data as server-sent events, each time the job moves (``api.dashboard.stream``);
    404 for an unknown job or another owner's."""
    live.job_version(settings, viewer.owner, job_id)  # 404 before the stream starts
    since = request.headers.get("last-event-id", since)  # a reconnecting browser's last page
    builder = request.app.state.page_builder
    events = stream.job_events(request, settings, builder, viewer.owner, job_id, since)
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(events, media_type="text/event-stream", headers=headers)


@router.get("/jobs/{job_id}/trials/{number}/version")
def trial_version(
    job_id: str, number: TrialNumber, settings: SettingsDep, viewer: DataViewer
) -> dict[str, str]:
    """A token that changes when the trial records an epoch or ends (its page reloads then)."""
    return {"version": live.trial_version(settings, viewer.owner, job_id, number)}


@router.get("/jobs/{job_id}")
async def job_data(
    request: Request,
    job_id: str,
    settings: SettingsDep,
    viewer: DataViewer,
    v: Annotated[str | None, Query(max_length=400)] = None,
) -> Response:
    """The job page's state (with its header as HTML), leaderboard and plots: of version ``v``
    (the one the stream told) when this process has it built, else of the current version.
    Served from memory when built (a new version has every viewer of the job ask for it at
    once); built otherwise (``live.job_page_json``)."""
    found = live.cached_page(viewer.owner, job_id, v) if v else None
    found = found or live.current_page(viewer.owner, job_id)
    if found is None:
        builder = request.app.state.page_builder
        found = await run_in_threadpool(live.job_page_json, settings, builder, viewer.owner, job_id)
    raw, gzipped = found
    if accepts_gzip(request):  # compressed once per version, not per viewer
        headers = {"Content-Encoding": "gzip", "Vary": "Accept-Encoding"}
        return Response(gzipped, media_type="application/json", headers=headers)
    return Response(raw, media_type="application/json")


@router.get("/jobs/{job_id}/importance")
def job_importance(
    request: Request, job_id: str, settings: SettingsDep, viewer: DataViewer
) -> dict[str, Any]:
    """Hyperparameter importance (PED-ANOVA) of the completed trials, computed in the
    page-building process."""
    return request.app.state.page_builder.importance(settings, viewer.owner, job_id)


@router.get("/jobs/{job_id}/curves")
def job_curves(
    job_id: str,
    settings: SettingsDep,
    viewer: DataViewer,
    trials: Annotated[str, Query(max_length=400, pattern=r"^[0-9]+(,[0-9]+)*$")],
    metric: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """Training and validation curves of the chosen trials (at most ``MAX_CURVE_TRIALS``)."""
    numbers = [int(n) for n in trials.split(",")]
    if len(set(numbers)) > MAX_CURVE_TRIALS:
        raise InputValidationError(
            "trials", f"at most {MAX_CURVE_TRIALS} trials at once", MAX_CURVE_TRIALS
        )
    return live.job_curves(settings, viewer.owner, job_id, numbers, metric)


@router.post("/jobs/{job_id}/predict")
def job_predict(
    job_id: str,
    body: PredictRequest,
    settings: SettingsDep,
    predictor: PredictorDep,
    viewer: DataViewer,
) -> PredictResponse:
    """The trial page's predict form: the JSON API's predict, signed in by the cookie."""
    return model_services.predict(settings, predictor, viewer.owner, job_id, body)
