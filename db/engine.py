"""Engine and session scope. One engine per process and URL; SQLite tuned for the embedded default.

On PostgreSQL every session bounds its locks: a statement waits at most ``db_lock_timeout_s`` for a
lock (then fails with a transient error, and its unit of work is run again), and a session that
keeps a transaction open without sending anything for ``db_idle_in_transaction_timeout_s`` (a
frozen or dead worker holding a job's lock) is cut off by the server, which releases its locks.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from db.settings import Settings, get_settings


def _tune_sqlite(engine: Engine) -> None:
    # WAL lets the API read while the worker writes; busy_timeout waits for the writer lock
    # instead of failing at once; foreign keys are off by default in SQLite.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def _postgres_options(settings: Settings) -> dict[str, object]:
    lock_ms = round(settings.db_lock_timeout_s * 1000)
    idle_ms = round(settings.db_idle_in_transaction_timeout_s * 1000)
    return {
        # a host that drops packets must fail fast (a transient error), not hang a request.
        "connect_timeout": 5,
        # which process a session belongs to, in pg_stat_activity (who holds a job's lock?).
        "application_name": f"hpsearch {socket.gethostname()}:{os.getpid()}"[:63],
        "options": f"-c lock_timeout={lock_ms} -c idle_in_transaction_session_timeout={idle_ms}",
    }


#: SQLite connections a process keeps open (anyio's thread pool runs up to 40 requests at once).
SQLITE_POOL_SIZE = 20


def is_in_memory(url: str) -> bool:
    """Whether ``url`` is an in-memory SQLite database: only this process can see it."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite"):
        return False
    return parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory"


def _sqlite_pool(url: str) -> dict[str, int]:
    """The pool size of a file database; an in-memory one keeps SQLAlchemy's own pool (one
    connection per thread, which takes no size)."""
    if is_in_memory(url):
        return {}
    return {"pool_size": SQLITE_POOL_SIZE, "max_overflow": SQLITE_POOL_SIZE}


_engines: dict[str, Engine] = {}
_factories: dict[str, sessionmaker[Session]] = {}


def get_engine(url: str | None = None) -> Engine:
    """The process-wide engine for ``url`` (default: the configured database)."""
    settings = get_settings()
    url = url or settings.resolved_database_url()
    if url not in _engines:
        if url.startswith("sqlite"):
            settings.ensure_data_dir()
            # as many connections kept as the API's threads may read at once: a pool smaller
            # than the load opens and closes a connection (and its PRAGMAs) per request
            pool = _sqlite_pool(url)
            engine = create_engine(
                url, connect_args={"timeout": 30, "check_same_thread": False}, **pool
            )
            _tune_sqlite(engine)
        else:
            connect_args = _postgres_options(settings) if url.startswith("postgresql") else {}
            engine = create_engine(
                url, pool_pre_ping=True, pool_size=5, max_overflow=10, connect_args=connect_args
            )
        _engines[url] = engine
    return _engines[url]


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on any exception."""
    engine = get_engine(url)
    key = str(engine.url)
    factory = _factories.get(key)
    if factory is None:
        factory = _factories.setdefault(key, sessionmaker(bind=engine, expire_on_commit=False))
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def ping(url: str | None = None) -> None:
    """Raise if the database cannot answer ``SELECT 1``."""
    with session_scope(url) as session:
        session.execute(text("SELECT 1"))


def reset_engines(close: bool = True) -> None:
    """Dispose cached engines (tests switch databases; forked workers must not share sockets).

    ``close=False`` in a forked child: drop the inherited pool without closing its connections,
    which still belong to the parent (SQLAlchemy's recipe for multiprocessing)."""
    for engine in _engines.values():
        engine.dispose(close=close)
    _engines.clear()
    _factories.clear()
