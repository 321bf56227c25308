"""A job's trials: the leaderboard and one trial's epochs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

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
