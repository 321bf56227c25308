"""What the routes do, one module per domain: ``jobs``, ``trials``, ``models``, ``datasets`` and
``account`` (the caller, health). Routes stay thin; these functions own the transactions
(``transaction``: one unit of work, retried through a database blink for at most
``api_db_retry_budget_s``, then a 503) and raise the domain errors of ``api.errors``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session

from db.engine import session_scope
from db.settings import Settings
from db.transient import retry_budget, run_retried

T = TypeVar("T")

API_PREFIX = "/api/v1"


def transaction(settings: Settings, what: str, work: Callable[[Session], T]) -> T:
    """Run ``work(session)`` in one transaction of the configured database; run it again from
    its start after a transient database error, for at most ``api_db_retry_budget_s``
    (``DatabaseUnavailableError`` then: 503 with Retry-After). ``work`` must be safe to run
    again: every write it makes is rolled back with the failed try."""

    def unit() -> T:
        with session_scope(settings.resolved_database_url()) as session:
            return work(session)

    with retry_budget(settings.api_db_retry_budget_s):
        return run_retried(what, unit)
