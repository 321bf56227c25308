"""A job's trials: the leaderboard, one trial's epochs, one trial as a spec, all of them as CSV."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from api import trial_csv
from api.auth import PrincipalDep
from api.deps import Offset, SettingsDep, TrialNumber
from api.json_body import JsonRoute
from api.schemas import TrialDetail, TrialPage, error_responses
from api.services import trials as services
from db.models import TrialStatus

router = APIRouter(prefix="/jobs/{job_id}/trials", tags=["trials"], route_class=JsonRoute)

#: the allow-list of sort keys (see ``db.repositories.leaderboard.TRIAL_SORT_COLUMNS``).
SortKey = Literal["score", "number", "duration_s", "epochs_run", "started_at"]


@router.get("", response_model=TrialPage, responses=error_responses(404, 422))
def list_trials(
    job_id: str,
    settings: SettingsDep,
    principal: PrincipalDep,
    sort: SortKey = "score",
    order: Annotated[
        Literal["asc", "desc"] | None,
        Query(description="Default: best first for score, ascending otherwise."),
    ] = None,
    status: TrialStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Offset = 0,
) -> TrialPage:
    """The leaderboard: trials sorted by score (the job's direction, nulls last) or another key."""
    return services.list_trials(
        settings,
        principal.owner,
        job_id,
        sort=sort,
        order=order,
        status=status,
        limit=limit,
        offset=offset,
    )


@router.get(
    ".csv",
    # a plain Response: its errors are documented (and sent) as JSON, its 200 as text/csv
    response_class=Response,
    responses={
        200: {
            "description": "Every trial, by number: number, status, score, best_epoch, "
            "epochs_run, one column per hyperparameter (natural order; ``hp:<name>`` if the "
            "name would collide with another column), one per best-epoch metric "
            "(``metric:<name>``, sorted), parameter_count, proposed_at, started_at, "
            "finished_at, duration_s, attempts, failure_reason. Empty cells are nulls; a text "
            "cell starting with = + - @ gets a leading ' (no spreadsheet formulas). The header "
            "alone for a job without trials.",
            "content": {
                trial_csv.MEDIA_TYPE: {
                    "schema": {"type": "string"},
                    "example": trial_csv.EXAMPLE,
                }
            },
            "headers": {
                "Content-Disposition": {
                    "description": 'attachment; filename="<job_id>-trials.csv"',
                    "schema": {"type": "string"},
                }
            },
        },
        **error_responses(404),
    },
)
def export_trials_csv(job_id: str, settings: SettingsDep, principal: PrincipalDep) -> Response:
    """Every trial of the job as a CSV table (UTF-8, one row per trial, by number)."""
    export = services.trials_csv(settings, principal.owner, job_id)
    disposition = f'attachment; filename="{export.filename}"'
    return Response(
        content=export.text,
        media_type=f"{trial_csv.MEDIA_TYPE}; charset=utf-8",
        headers={"Content-Disposition": disposition},
    )


@router.get("/{number}", response_model=TrialDetail, responses=error_responses(404))
def get_trial(
    job_id: str, number: TrialNumber, settings: SettingsDep, principal: PrincipalDep
) -> TrialDetail:
    """One trial with its per-epoch metrics."""
    return services.get_trial(settings, principal.owner, job_id, number)


@router.get(
    "/{number}/spec",
    response_class=JSONResponse,
    responses={
        200: {
            "description": "A spec: POST it to /jobs to train the trial again.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobSpec"}}},
            "headers": {
                "X-Reproduction": {
                    "description": "``exact``: the same seeds, the same score; ``network``: "
                    "the same network, trained anew (an unseeded search, a Hyperband trial).",
                    "schema": {"type": "string", "enum": ["exact", "network"]},
                },
                "X-Reproduction-Note": {
                    "description": "Why it is not exact (absent when it is).",
                    "schema": {"type": "string"},
                },
            },
        },
        **error_responses(404, 409),
    },
)
def get_trial_spec(
    job_id: str, number: TrialNumber, settings: SettingsDep, principal: PrincipalDep
) -> JSONResponse:
    """The one-trial spec that trains this trial again: every hyperparameter fixed to the
    trial's value, each hidden layer written out (``auto`` initializers resolved), the job's
    seeds; submitted, a seeded trial gets its score again."""
    written = services.get_trial_spec(settings, principal.owner, job_id, number)
    headers = {"X-Reproduction": "exact" if written.exact else "network"}
    if written.notes:
        headers["X-Reproduction-Note"] = "; ".join(written.notes)
    return JSONResponse(written.spec, headers=headers)
