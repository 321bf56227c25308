"""The dashboard's pages: jobs, a job, a trial, compared jobs, a dataset, and signing in.

Each page is rendered on the server with what it shows first (so it reads before any script
runs); the job page's plots come from the live JSON of ``api.dashboard.data``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from api.dashboard import views
from api.dashboard.session import (
    COOKIE,
    COOKIE_MAX_AGE_S,
    PageViewer,
    presented_key,
    safe_next,
)
from api.dashboard.templating import templates
from api.deps import SettingsDep, TrialNumber
from api.errors import ApiError, AuthenticationError, NotFoundError
from api.services import models as model_services
from api.services import trials as trial_services
from db.models import JobStatus

router = APIRouter(include_in_schema=False, default_response_class=HTMLResponse)

JOBS_PER_PAGE = 50


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    """A page, with what every page needs (auth mode, the signed-in state)."""
    settings = request.app.state.settings
    context.setdefault("keys_mode", settings.auth_mode != "open")
    context.setdefault("signed_in", presented_key(request) is not None)
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def not_found(request: Request, error: NotFoundError) -> Response:
    """The 404 page (another owner's job is simply not found)."""
    return render(request, "not_found.html", status_code=404, message=str(error.detail))


@router.get("/")
def jobs_page(
    request: Request,
    settings: SettingsDep,
    viewer: PageViewer,
    status: JobStatus | None = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Response:
    """The viewer's jobs, newest first; live."""
    view = views.jobs_payload(settings, viewer.owner, status, JOBS_PER_PAGE, offset)
    return render(
        request,
        "jobs.html",
        view=view,
        status=status.value if status else "",
        statuses=[s.value for s in JobStatus],
        offset=offset,
        per_page=JOBS_PER_PAGE,
    )


@router.get("/jobs/{job_id}")
def job_page(request: Request, job_id: str, settings: SettingsDep, viewer: PageViewer) -> Response:
    """One job: state, plots, leaderboard, curves; live."""
    try:
        job = views.job_detail(settings, viewer.owner, job_id)
    except NotFoundError as error:
        return not_found(request, error)
    return render(request, "job.html", job=job)


@router.get("/jobs/{job_id}/trials/{number}")
def trial_page(
    request: Request, job_id: str, number: TrialNumber, settings: SettingsDep, viewer: PageViewer
) -> Response:
    """One trial: hyperparameters, epochs, curves, the spec that reproduces it, its model."""
    try:
        view = views.trial_payload(settings, viewer.owner, job_id, number)
        try:
            written = trial_services.get_trial_spec(settings, viewer.owner, job_id, number)
            spec: dict[str, Any] = {"spec": written.spec, "exact": written.exact,
                                    "notes": written.notes}  # fmt: skip
        except NotFoundError:
            raise
        except ApiError as error:  # a job on a deleted upload: said on the page
            spec = {"error": str(error.detail), "spec": None, "exact": False, "notes": []}
    except NotFoundError as error:
        return not_found(request, error)
    return render(request, "trial.html", view=view, spec=spec, number=number)


@router.get("/jobs/{job_id}/trials/{number}/model")
def trial_model(
    request: Request, job_id: str, number: TrialNumber, settings: SettingsDep, viewer: PageViewer
) -> Response:
    """The stored model a trial trained, as the ``.keras`` file."""
    try:
        rank = views.trial_payload(settings, viewer.owner, job_id, number)["model_rank"]
        if rank is None:
            raise NotFoundError(f"trial {number} of job {job_id} has no stored model")
        model = model_services.find_model(settings, viewer.owner, job_id, rank)
    except NotFoundError as error:
        return not_found(request, error)
    content = model_services.model_content(settings, model)
    return Response(
        content,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{model.filename}"'},
    )


@router.get("/jobs/{job_id}/trials.csv")
def trials_csv(
    request: Request, job_id: str, settings: SettingsDep, viewer: PageViewer
) -> Response:
    """The job's trials as CSV (``GET /api/v1/jobs/{id}/trials.csv``, signed in by cookie)."""
    try:
        export = trial_services.trials_csv(settings, viewer.owner, job_id)
    except NotFoundError as error:
        return not_found(request, error)
    return Response(
        export.text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{export.filename}"'},
    )


@router.get("/compare")
def compare_page(
    request: Request,
    settings: SettingsDep,
    viewer: PageViewer,
    jobs: Annotated[list[str], Query(max_length=views.MAX_COMPARED)] = [],  # noqa: B006
) -> Response:
    """Two or more jobs overlaid: best so far, and the distribution of scores."""
    if len(jobs) < 2:
        return render(request, "not_found.html", status_code=400, message="choose two jobs or more")
    try:
        view = views.compare_payload(settings, viewer.owner, jobs)
    except NotFoundError as error:
        return not_found(request, error)
    return render(request, "compare.html", view=view)


@router.get("/datasets/{dataset_id}")
def dataset_page(
    request: Request, dataset_id: str, settings: SettingsDep, viewer: PageViewer
) -> Response:
    """An uploaded dataset's summary: rows, task, balance or target, per-feature statistics."""
    try:
        view = views.dataset_payload(settings, viewer.owner, dataset_id)
    except NotFoundError as error:
        return not_found(request, error)
    return render(request, "dataset.html", view=view)


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    """Sign in with an API key (keys mode)."""
    return render(request, "login.html", next=safe_next(next), error=None)


@router.post("/login")
def login(
    request: Request,
    settings: SettingsDep,
    key: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Check the key as the API does; keep it in an HttpOnly cookie and go on."""
    from api.auth import principal_for_key

    try:
        principal_for_key(request, settings, key.strip())
    except AuthenticationError as error:
        return render(
            request, "login.html", status_code=401, next=safe_next(next), error=error.detail
        )
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        COOKIE,
        key.strip(),
        max_age=COOKIE_MAX_AGE_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    """Forget the key this browser signed in with."""
    response = RedirectResponse("/login", status_code=303)
    if presented_key(request):
        response.delete_cookie(COOKIE)
    return response
