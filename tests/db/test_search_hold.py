"""Holding a job's search through a long step, on the real server: a live holder slower than
``search_step_timeout_s`` is never cut off, a frozen one (SIGSTOP) is, and so is one that runs
past ``MAX_HOLD_FACTOR`` times the bound."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from db.engine import session_scope
from db.repositories import jobs
from db.repositories.search_hold import MAX_HOLD_FACTOR, hold_search
from db.transient import is_transient

pytestmark = pytest.mark.integration

JOB = "job-holding-its-search"


def _taken_elsewhere() -> bool:
    with session_scope() as other:
        return not jobs.try_lock_search(other, JOB)


def test_a_live_step_slower_than_the_bound_keeps_the_search(postgres_url: str) -> None:
    with session_scope() as session, hold_search(session, JOB, 0.6) as held:
        assert held
        for _ in range(4):  # 2.4 s of computing, four times the bound, no statement of its own
            time.sleep(0.6)
            assert _taken_elsewhere()
        assert session.execute(text("SELECT 1")).scalar_one() == 1
    assert not _taken_elsewhere()  # committed: the search is free again


def test_a_step_held_past_the_cap_is_cut_off(postgres_url: str) -> None:
    bound = 0.1
    with (
        pytest.raises(DBAPIError) as cut,
        session_scope() as session,
        hold_search(session, JOB, bound) as held,
    ):
        assert held
        time.sleep(bound * MAX_HOLD_FACTOR + 1.0)
        session.execute(text("SELECT 1"))
    assert is_transient(cut.value)
    assert not _taken_elsewhere()


def test_another_session_finds_the_search_taken_and_does_not_wait(postgres_url: str) -> None:
    with session_scope() as session, hold_search(session, JOB, 5) as held:
        assert held
        started = time.monotonic()
        with session_scope() as other, hold_search(other, JOB, 5) as other_held:
            assert not other_held
        assert time.monotonic() - started < 2


HOLDER = textwrap.dedent(
    """
    import sys, time
    from db.engine import session_scope
    from db.repositories.search_hold import hold_search
    with session_scope() as session, hold_search(session, sys.argv[1], 0.6) as held:
        print("held" if held else "taken", flush=True)
        time.sleep(60)
    """
)


def test_a_frozen_holder_is_cut_off_and_its_search_freed(postgres_url: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, JOB],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "HPSEARCH_DATABASE_URL": postgres_url},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        time.sleep(1.5)  # alive: kept past twice the bound
        assert _taken_elsewhere()
        holder.send_signal(signal.SIGSTOP)  # frozen: its keep-alive thread stops too
        frozen = time.monotonic()
        while _taken_elsewhere():
            assert time.monotonic() - frozen < 15, "a frozen holder kept the search"
            time.sleep(0.1)
        # freed by the server once the holder stayed silent for the bound (0.6 s)
        assert time.monotonic() - frozen >= 0.3
    finally:
        holder.send_signal(signal.SIGCONT)
        holder.kill()
        holder.wait(10)


def test_on_sqlite_the_writer_lock_serialises_and_nothing_is_kept_alive(sqlite_url: str) -> None:
    with session_scope() as session, hold_search(session, JOB, 0.1) as held:
        assert held
        time.sleep(0.3)
        assert session.execute(text("SELECT 1")).scalar_one() == 1
