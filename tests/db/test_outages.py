"""Database outages for real, on a throwaway PostgreSQL cluster this test starts itself: a
restart in the middle of a trial's writes, an outage past the retry budget, and a lock holder
that stops talking (cut off by idle_in_transaction_session_timeout)."""

from __future__ import annotations

import threading
import time

import pytest

from db.engine import reset_engines, session_scope
from db.models import TrialStatus
from db.repositories import jobs
from db.settings import get_settings
from db.transient import DatabaseUnavailableError, retry_budget
from tests.db.helpers import claimed, epochs, new_job, record, trial
from tests.pg_cluster import ThrowawayCluster

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(throwaway_postgres: ThrowawayCluster) -> ThrowawayCluster:
    """The test's own cluster (tests/conftest.py)."""
    return throwaway_postgres


def test_a_restart_while_a_trial_records_epochs_loses_and_doubles_nothing(
    cluster: ThrowawayCluster,
) -> None:
    claim = claimed(new_job())
    restart = threading.Thread(target=cluster.restart, kwargs={"down_s": 2.0})
    for epoch in range(40):
        if epoch == 5:
            restart.start()
        assert record(claim, epoch)
        time.sleep(0.1)
    restart.join()
    assert epochs(claim.id) == [(0, e) for e in range(40)]
    row = trial(claim.id)
    assert (row.status, row.attempts, row.epochs_run) == (TrialStatus.RUNNING, 1, 40)
    assert "database system is shut down" in cluster.log.read_text()


def test_an_outage_past_the_budget_says_so_and_the_next_step_works_again(
    cluster: ThrowawayCluster,
) -> None:
    claim = claimed(new_job())
    cluster.stop()
    started = time.monotonic()
    with retry_budget(1.5), pytest.raises(DatabaseUnavailableError):
        record(claim, 0)
    assert time.monotonic() - started >= 1.5
    cluster.start()
    assert record(claim, 0) and epochs(claim.id) == [(0, 0)]


def test_a_silent_lock_holder_is_cut_off_and_the_lock_freed(
    cluster: ThrowawayCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPSEARCH_DB_IDLE_IN_TRANSACTION_TIMEOUT_S", "1")
    get_settings.cache_clear()
    reset_engines()
    job_id = new_job()
    holder_error: list[BaseException] = []

    def frozen_holder() -> None:
        try:
            with session_scope() as session:
                jobs.lock_job(session, job_id)
                time.sleep(3)  # a frozen worker: its transaction stays open, silent
                jobs.lock_job(session, job_id)
        except BaseException as error:
            holder_error.append(error)

    holder = threading.Thread(target=frozen_holder)
    holder.start()
    time.sleep(0.3)
    started = time.monotonic()
    with session_scope() as session:
        assert jobs.lock_job(session, job_id) is not None
    waited = time.monotonic() - started
    holder.join()
    assert waited < 2.5, waited  # about the idle timeout, not the holder's 3 s
    assert holder_error, "the silent holder kept its transaction"


def test_a_search_step_may_stay_silent_longer_than_other_transactions(
    cluster: ThrowawayCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPSEARCH_DB_IDLE_IN_TRANSACTION_TIMEOUT_S", "1")
    get_settings.cache_clear()
    reset_engines()
    job_id = new_job()
    with session_scope() as step:  # a Bayesian proposal computing under the job's search
        assert jobs.try_lock_search(step, job_id, step_timeout_s=5)
        jobs.lock_job(step, job_id)
        time.sleep(2)
        assert jobs.lock_job(step, job_id) is not None  # still alive
    with pytest.raises(Exception) as cut, session_scope() as plain:
        jobs.lock_job(plain, job_id)
        time.sleep(2)
        jobs.lock_job(plain, job_id)
    assert "idle-in-transaction" in str(cut.value) or "terminat" in str(cut.value)
