"""Read-only facts: who the caller is, hard limits, health (the one route needing no key)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from api.auth import PrincipalDep, authenticate
from api.deps import QueueDep, SettingsDep
from api.json_body import JsonRoute
from api.schemas import Account, Health, Limits, error_responses
from api.services import account as services
from search_spaces.limits import LIMITS

router = APIRouter(tags=["service"], route_class=JsonRoute)


@router.get("/me", response_model=Account, responses=error_responses(401, 429, 503))
def get_account(settings: SettingsDep, principal: PrincipalDep) -> Account:
    """The caller's owner, the key used, and its quotas with what is used of each."""
    return services.account(settings, principal)


@router.get(
    "/limits",
    response_model=Limits,
    dependencies=[Depends(authenticate)],
    responses=error_responses(401, 429, 503),
)
def get_limits() -> Limits:
    """The hard limits every spec is checked against."""
    return Limits(dict(LIMITS))


@router.get("/health", response_model=Health, responses={503: {"model": Health}})
def health(settings: SettingsDep, queue: QueueDep) -> JSONResponse:
    """200 when the database and the broker answer; 503 naming the one that does not."""
    db_ok, db_state = services.check_database(settings)
    broker_ok, broker_state = queue.broker_reachable()
    body = Health(
        status="ok" if db_ok and broker_ok else "unavailable",
        database=db_state,
        broker=broker_state,
        version=services.service_version(),
    )
    return JSONResponse(status_code=200 if body.status == "ok" else 503, content=body.model_dump())
