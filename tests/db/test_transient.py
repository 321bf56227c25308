"""Which database errors pass, met for real: a terminated backend, a deadlock, a serialization
failure, a lock wait cut short, SQLite's busy writer lock; and what retrying does with them."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from db.engine import get_engine, session_scope
from db.models import Job
from db.transient import (
    DatabaseUnavailableError,
    is_outage,
    is_transient,
    outages_met,
    retry_budget,
    run_retried,
)
from tests.conftest import POSTGRES_ADMIN_URL
from tests.db.helpers import new_job, waiting


def _terminate(pid: int) -> None:
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()


def test_a_backend_terminated_mid_transaction_is_retried_from_the_start(
    postgres_url: str,
) -> None:
    job_id = new_job()
    tries = []

    def unit() -> str:
        with session_scope() as session:
            tries.append(session.execute(text("SELECT pg_backend_pid()")).scalar_one())
            session.get_one(Job, job_id).name = f"try {len(tries)}"
            session.flush()
            if len(tries) == 1:
                _terminate(tries[0])  # its transaction dies with it
            return session.get_one(Job, job_id).name or ""

    met = outages_met()
    assert run_retried("rename a job", unit) == "try 2"
    assert len(tries) == 2 and tries[0] != tries[1]
    assert outages_met() == met + 1  # a backend gone: the database was away for this session
    with session_scope() as session:
        assert session.get_one(Job, job_id).name == "try 2"


def test_an_error_that_does_not_pass_is_raised_at_once(store: str) -> None:
    job_id = new_job()
    waiting(job_id)
    tries = []

    def duplicate() -> None:
        tries.append(1)
        waiting(job_id)  # trial number 0 again: a unique violation

    with pytest.raises(IntegrityError) as raised:
        run_retried("add a trial", duplicate)
    assert len(tries) == 1 and not is_transient(raised.value)


def test_past_the_budget_the_error_becomes_database_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.pg_cluster import free_port

    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"  # nobody listens
    tries = []

    def unit() -> None:
        tries.append(time.monotonic())
        with session_scope(url) as session:
            session.execute(text("SELECT 1"))

    started = time.monotonic()
    with retry_budget(1.0), pytest.raises(DatabaseUnavailableError) as raised:
        run_retried("ping a server that is down", unit)
    assert 1.0 <= time.monotonic() - started < 5 and len(tries) >= 2
    assert "stayed unavailable" in str(raised.value)
    assert is_outage(raised.value)  # refused connections: nobody there


def test_a_deadlock_and_a_serialization_failure_are_transient(postgres_url: str) -> None:
    a, b = new_job(), new_job()
    engine = get_engine()
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def lock(first: str, second: str) -> None:
        try:
            with engine.begin() as conn:
                conn.execute(text("SELECT 1 FROM jobs WHERE id = :id FOR UPDATE"), {"id": first})
                barrier.wait()
                conn.execute(text("SELECT 1 FROM jobs WHERE id = :id FOR UPDATE"), {"id": second})
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=lock, args=p) for p in ((a, b), (b, a))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 1 and is_transient(errors[0]), errors
    assert "deadlock" in str(errors[0])
    assert not is_outage(errors[0])  # the database answered: it was up

    with engine.connect() as one, engine.connect() as two:
        one.execute(text("BEGIN ISOLATION LEVEL REPEATABLE READ"))
        two.execute(text("BEGIN ISOLATION LEVEL REPEATABLE READ"))
        one.execute(text("SELECT name FROM jobs WHERE id = :id"), {"id": a}).all()
        two.execute(text("SELECT name FROM jobs WHERE id = :id"), {"id": a}).all()
        one.execute(text("UPDATE jobs SET name = 'one' WHERE id = :id"), {"id": a})
        one.commit()
        with pytest.raises(Exception) as raised:
            two.execute(text("UPDATE jobs SET name = 'two' WHERE id = :id"), {"id": a})
        two.rollback()
    assert is_transient(raised.value) and "serialize" in str(raised.value)
    assert not is_outage(raised.value)


def test_sqlites_busy_writer_lock_is_transient_and_a_missing_table_is_not(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN IMMEDIATE")
    waiter = sqlite3.connect(path, timeout=0)
    with pytest.raises(sqlite3.OperationalError) as locked:
        waiter.execute("INSERT INTO t VALUES (1)")
    assert is_transient(locked.value) and not is_outage(locked.value)
    with pytest.raises(sqlite3.OperationalError) as missing:
        waiter.execute("SELECT * FROM nowhere")
    assert not is_transient(missing.value)
    holder.rollback()
