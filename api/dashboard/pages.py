"""The dashboard's pages: jobs, a job, a trial, compared jobs, a dataset, and signing in.

Each page is rendered on the server with what it shows first (so it reads before any script
runs); the job page's plots come from the live JSON of ``api.dashboard.data``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from api.auth import principal_for_key
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
from api.errors import AuthenticationError, ConflictError, NotFoundError
from api.services import models as model_services
from api.services import trials as trial_services
from db.models import JobStatus


class PageRoute(APIRoute):
    """A page answers a missing job, trial or dataset (another owner's included) with the 404
    page, and a bad query with a page saying what is wrong: never with JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except NotFoundError as error:
                return render(request, "not_found.html", 404, message=str(error.detail))
            except RequestValidationError as error:
                problems = [
                    f"{'.'.join(str(p) for p in e['loc'][1:])}: {e['msg']}" for e in error.errors()
                ]
                return render(
                    request,
                    "not_found.html",
                    422,
                    heading="Bad request",
                    message="; ".join(problems),
                )

        return page_handler


router = APIRouter(
    include_in_schema=False, default_response_class=HTMLResponse, route_class=PageRoute
)

JOBS_PER_PAGE = 50


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    """A page, with what every page needs (auth mode, the signed-in state)."""
    settings = request.app.state.settings
    context.setdefault("keys_mode", settings.auth_mode != "open")
    context.setdefault("signed_in", presented_key(request) is not None)
    return templates.TemplateResponse(request, name, context, status_code=status_code)


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
    return render(request, "job.html", job=views.job_detail(settings, viewer.owner, job_id))


@router.get("/jobs/{job_id}/trials/{number}")
def trial_page(
    request: Request, job_id: str, number: TrialNumber, settings: SettingsDep, viewer: PageViewer
) -> Response:
    """One trial: hyperparameters, epochs, curves, the spec that reproduces it, its model."""
    view = views.trial_payload(settings, viewer.owner, job_id, number)
    try:
        written = trial_services.get_trial_spec(settings, viewer.owner, job_id, number)
        spec: dict[str, Any] = {"spec": written.spec, "exact": written.exact,
                                "notes": written.notes}  # fmt: skip
    except ConflictError as error:  # a job on a deleted upload: said on the page
        spec = {"error": str(error.detail), "spec": None, "exact": False, "notes": []}
    return render(request, "trial.html", view=view, spec=spec, number=number)


def _download(content: bytes | str, media_type: str, filename: str) -> Response:
    disposition = f'attachment; filename="{filename}"'
    return Response(content, media_type=media_type, headers={"Content-Disposition": disposition})


@router.get("/jobs/{job_id}/trials/{number}/model")
def trial_model(
    job_id: str, number: TrialNumber, settings: SettingsDep, viewer: PageViewer
) -> Response:
    """The stored model a trial trained, as the ``.keras`` file."""
    rank = views.model_rank(settings, viewer.owner, job_id, number)
    if rank is None:
        raise NotFoundError(f"trial {number} of job {job_id} has no stored model")
    model = model_services.find_model(settings, viewer.owner, job_id, rank)
    content = model_services.model_content(settings, model)
    return _download(content, "application/octet-stream", model.filename)


@router.get("/jobs/{job_id}/trials.csv")
def trials_csv(job_id: str, settings: SettingsDep, viewer: PageViewer) -> Response:
    """The job's trials as CSV (``GET /api/v1/jobs/{id}/trials.csv``, signed in by cookie)."""
    export = trial_services.trials_csv(settings, viewer.owner, job_id)
    return _download(export.text, "text/csv; charset=utf-8", export.filename)


@router.get("/compare")
def compare_page(
    request: Request,
    settings: SettingsDep,
    viewer: PageViewer,
    jobs: Annotated[list[str], Query(max_length=views.MAX_COMPARED)] = [],  # noqa: B006
) -> Response:
    """Two or more jobs overlaid: best so far, and the distribution of scores."""
    if len(jobs) < 2:
        return render(request, "not_found.html", 400, heading="Bad request",
                      message="choose two jobs or more")  # fmt: skip
    return render(request, "compare.html", view=views.compare_payload(settings, viewer.owner, jobs))


@router.get("/datasets/{dataset_id}")
def dataset_page(
    request: Request, dataset_id: str, settings: SettingsDep, viewer: PageViewer
) -> Response:
    """A dataset's summary: rows, task, balance or target, per-feature statistics."""
    return render(
        request, "dataset.html", view=views.dataset_payload(settings, viewer.owner, dataset_id)
    )


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
