"""Database errors that pass, and retrying a unit of work through them.

A database that blinks (a restart for an upgrade, a failover, a dropped connection, a deadlock, a
lock wait cut short by ``lock_timeout``) must never fail a trial or a job. Every unit of work that
talks to the database runs in ONE transaction and is safe to run again from its start, so such an
error is met by rolling back and running the whole unit again, with exponential backoff and
jitter (tenacity), for at most a budget of seconds: ``db_retry_budget_s`` in the workers,
``api_db_retry_budget_s`` in the API (``with retry_budget(...)``). Past the budget
the error becomes ``DatabaseUnavailableError``, which each caller turns into something that loses
nothing: a trial handed back to the queue, a dispatch left to the reaper, a 503 with Retry-After.

Anything else (a constraint violated, a missing table, a bug) is not retried.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

import tenacity
from sqlalchemy import exc as sa_exc

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

#: SQLSTATEs of errors that go away by themselves: the server shutting down, starting up or in
#: recovery; serialization failures and deadlocks (the loser is told to retry); a lock not
#: granted within lock_timeout; a statement cancelled (pg_cancel_backend); a session cut for
#: staying idle in its transaction; too many connections for now.
TRANSIENT_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available (lock_timeout, NOWAIT)
        "57014",  # query_canceled
        "57P01",  # admin_shutdown (pg_terminate_backend, a fast shutdown)
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (the database system is starting up / in recovery)
        "25P03",  # idle_in_transaction_session_timeout
        "53300",  # too_many_connections
    }
)
#: SQLite answers "database is locked" when the single writer lock stays taken past busy_timeout.
SQLITE_TRANSIENT_MESSAGES = ("database is locked", "database table is locked", "database is busy")


class DatabaseUnavailableError(RuntimeError):
    """A transient database error outlasted the retry budget."""

    def __init__(self, what: str, waited_s: float, cause: BaseException | str) -> None:
        if isinstance(cause, BaseException):
            cause = f"{type(cause).__name__}: {(str(cause).strip().splitlines() or [''])[0][:200]}"
        super().__init__(f"{what}: the database stayed unavailable for {waited_s:.1f} s ({cause})")
        self.what, self.waited_s, self.cause = what, waited_s, cause

    def __reduce__(self) -> tuple[Any, ...]:
        # raised in the dashboard's page-building process, it crosses back to the API's
        return (type(self), (self.what, self.waited_s, self.cause))


def _sqlstate(error: BaseException) -> str | None:
    return getattr(error, "sqlstate", None) or getattr(
        getattr(error, "diag", None), "sqlstate", None
    )


def is_transient(error: BaseException) -> bool:
    """True for an error that a new attempt of the same unit of work may not meet again."""
    if isinstance(error, DatabaseUnavailableError):
        return False
    if isinstance(error, sa_exc.TimeoutError):  # no pooled connection free in time
        return True
    if isinstance(error, sa_exc.DBAPIError):
        if error.connection_invalidated:
            return True
        error = error.orig if error.orig is not None else error
    if isinstance(error, sqlite3.OperationalError):
        return any(m in str(error).lower() for m in SQLITE_TRANSIENT_MESSAGES)
    module = type(error).__module__
    if module.startswith("psycopg"):
        import psycopg

        state = _sqlstate(error)
        if state is None:  # no answer from a server: refused, reset, closed, timed out
            return isinstance(error, psycopg.OperationalError | psycopg.InterfaceError)
        return state in TRANSIENT_SQLSTATES or state.startswith("08")
    return False


#: SQLSTATEs of a server that is going away or not there yet (not of a lock, a deadlock or a
#: timeout: those happen while the database is up).
OUTAGE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def is_outage(error: BaseException) -> bool:
    """True for a transient error that means the database itself was away (a restart, a
    failover, a dropped connection), not one it answered while up (a lock not granted in time,
    a deadlock, a statement or a session cut short)."""
    if isinstance(error, DatabaseUnavailableError):
        error = error.__cause__ or error
    if not is_transient(error) or isinstance(error, sa_exc.TimeoutError):
        return False
    if isinstance(error, sa_exc.DBAPIError) and error.orig is not None:
        error = error.orig  # what the server said wins over the pool's reading of it
    if isinstance(error, sqlite3.OperationalError):
        return False  # "database is locked": a writer holds it
    state = _sqlstate(error)
    # no SQLSTATE: no answer from a server (refused, reset, closed)
    return state is None or state.startswith("08") or state in OUTAGE_SQLSTATES


_met_lock = threading.Lock()
_met = 0


def outages_met() -> int:
    """How many errors of a database that was away this process has met so far, retried ones
    included: a change between two reads means the database blinked in between, even if every
    unit of work that met it succeeded on a later try."""
    return _met


def _count_met(error: BaseException | None) -> None:
    global _met
    if error is not None and is_outage(error):
        with _met_lock:
            _met += 1


_budget: ContextVar[float | None] = ContextVar("db_retry_budget_s", default=None)


def retry_budget_s() -> float:
    """Seconds a unit of work may spend retrying: the innermost ``retry_budget`` of this thread,
    else ``db_retry_budget_s`` from the settings."""
    budget = _budget.get()
    if budget is not None:
        return budget
    from db.settings import get_settings

    return get_settings().db_retry_budget_s


@contextmanager
def retry_budget(seconds: float) -> Iterator[None]:
    """Units of work run inside spend at most ``seconds`` retrying (0: a single try)."""
    token = _budget.set(seconds)
    try:
        yield
    finally:
        _budget.reset(token)


#: exponential backoff between attempts, capped: a restarted server is found within about
#: ``BACKOFF_MAX_S`` of being back; the random jitter spreads the workers' retries.
BACKOFF_INITIAL_S = 0.05
BACKOFF_MAX_S = 2.0
BACKOFF_JITTER_S = 0.25


def run_retried(what: str, work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``work(*args, **kwargs)``, again after each transient error, until it succeeds or the
    retry budget is spent (``DatabaseUnavailableError``). ``work`` must be one transaction, safe
    to run again from its start."""
    budget = retry_budget_s()
    started = time.monotonic()
    failures = 0

    def before_sleep(state: tenacity.RetryCallState) -> None:
        nonlocal failures
        failures += 1
        error = state.outcome.exception() if state.outcome else None
        _count_met(error)
        if failures == 1 or failures % 10 == 0:
            log.warning(
                "%s: transient database error (%s), retrying for up to %.0f s",
                what,
                type(error).__name__,
                budget,
            )

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient),
        stop=tenacity.stop_after_delay(budget),
        wait=tenacity.wait_exponential_jitter(
            initial=BACKOFF_INITIAL_S, max=BACKOFF_MAX_S, jitter=BACKOFF_JITTER_S
        ),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        result = retrying(work, *args, **kwargs)
    except Exception as error:
        if is_transient(error):
            _count_met(error)
            waited = time.monotonic() - started
            raise DatabaseUnavailableError(what, waited, error) from error
        raise
    if failures:
        log.warning(
            "%s: done after %d transient errors (%.1f s)",
            what,
            failures,
            time.monotonic() - started,
        )
    return result


def retried(what: str) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorate a function that runs one transaction of its own: it is run again after a
    transient error (``run_retried``)."""

    def decorate(work: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(work)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            return run_retried(what, work, *args, **kwargs)

        return wrapper

    return decorate


__all__ = [
    "DatabaseUnavailableError",
    "is_outage",
    "is_transient",
    "outages_met",
    "retried",
    "retry_budget",
    "retry_budget_s",
    "run_retried",
]
