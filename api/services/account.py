"""The caller's account (owner, key, quota usage) and the service's health."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from api import quotas
from api.auth import Principal
from api.schemas import Account, QuotaUse
from api.services import transaction
from db.engine import ping
from db.repositories import owners
from db.settings import Settings

log = logging.getLogger(__name__)


def account(settings: Settings, principal: Principal) -> Account:
    """The caller's owner, key and quota usage."""

    def read(session: Session) -> tuple[quotas.Quotas, owners.Usage]:
        limits = quotas.Quotas.of(owners.get_owner(session, principal.owner), settings)
        return limits, owners.usage(session, principal.owner)

    limits, used = transaction(settings, "read an account", read)
    return Account(
        owner=principal.owner,
        auth_mode=settings.auth_mode,
        key_id=principal.key_id,
        active_jobs=QuotaUse(limit=limits.active_jobs, used=used.active_jobs),
        pending_trials=QuotaUse(limit=limits.pending_trials, used=used.pending_trials),
        stored_bytes=QuotaUse(limit=limits.stored_bytes, used=used.stored_bytes),
    )


def check_database(settings: Settings) -> tuple[bool, str]:
    """``(ok, state)`` of the database for /health: one try, no retry (health says what is)."""
    try:
        ping(settings.resolved_database_url())
    except Exception as exc:
        log.warning("database check failed: %r", exc)
        return False, f"unreachable ({type(exc).__name__})"
    return True, "ok"


def service_version() -> str:
    """The installed package version (``0.0.0`` when run from a bare checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hpsearch")
    except PackageNotFoundError:
        return "0.0.0"
