"""Who is calling: the API key's owner, or the open mode's single owner.

Every route but ``/health`` and the OpenAPI document depends on ``authenticate``; the owner it
returns scopes every query, so another owner's job or dataset is simply not found (404).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import SettingsDep
from api.errors import AuthenticationError
from api.services import transaction
from db.models import OPEN_MODE_OWNER
from db.repositories import owners
from db.settings import Settings

log = logging.getLogger(__name__)

bearer = HTTPBearer(
    auto_error=False,
    description="An API key from `hpsearch keys create NAME` (not needed in the open mode).",
)


@dataclass(frozen=True)
class Principal:
    """The caller: the owner everything is scoped to, and the key used (None in open mode)."""

    owner: str
    key_id: str | None


def authenticate(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The caller's principal; 401 for a missing, malformed, unknown, revoked or expired key,
    429 for a key over its request rate (``api.rate_limit``)."""
    return principal_for_key(request, settings, credentials and credentials.credentials)


def principal_for_key(request: Request, settings: Settings, token: str | None) -> Principal:
    """The principal of API key ``token`` (any in open mode): what ``authenticate`` checks of a
    header, for callers that carry the key otherwise (the dashboard's cookie)."""
    if settings.auth_mode == "open":
        return Principal(owner=OPEN_MODE_OWNER, key_id=None)
    if not token:
        raise AuthenticationError(
            "an API key is required: send the header 'Authorization: Bearer <key>' "
            "(an administrator creates keys with `hpsearch keys create NAME`)"
        )
    key = transaction(settings, "check an API key", lambda s: owners.verify_key(s, token))
    if key.refused is not None or key.key_id is None or key.owner is None:
        raise AuthenticationError(key.refused or "invalid or revoked API key")
    request.app.state.rate_limiter.hit(key.key_id, key.requests_per_minute)
    return Principal(owner=key.owner, key_id=key.key_id)


PrincipalDep = Annotated[Principal, Depends(authenticate)]


def log_auth_mode(settings: Settings) -> None:
    """Say at start-up which mode the API runs in; the open mode is a warning."""
    if settings.auth_mode == "open":
        log.warning(
            "OPEN MODE: no API key is required and every request acts as owner %r "
            "(set HPSEARCH_AUTH_MODE=keys and create keys with `hpsearch keys create NAME` "
            "before exposing this API to anyone else)",
            OPEN_MODE_OWNER,
        )
    else:
        log.info("API keys required (HPSEARCH_AUTH_MODE=keys)")
