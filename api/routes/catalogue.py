"""Read-only facts: hard limits, health."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api import services
from api.deps import QueueDep, SettingsDep
from api.schemas import Health
from search_spaces.limits import LIMITS

router = APIRouter(tags=["service"])


@router.get("/limits", response_model=dict[str, int])
def get_limits() -> dict[str, int]:
    """The hard limits every spec is checked against."""
    return dict(LIMITS)


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
