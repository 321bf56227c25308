"""A job's trials: the leaderboard and one trial's epochs."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

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
