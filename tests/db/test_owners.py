"""Owners, keys and usage (the quotas' inputs) as storage keeps them, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from db.engine import session_scope
from db.models import ApiKey, JobStatus, TrialStatus
from db.repositories import artifacts, jobs, owners, trials
from db.repositories.trials import TrialResult
from db.values import as_utc, utcnow
from tests.db.helpers import claimed, new_job


def test_usage_counts_active_jobs_trials_left_and_bytes_stored(store: str) -> None:
    running = new_job(status=JobStatus.RUNNING)
    new_job(status=JobStatus.SUCCEEDED)
    new_job(status=JobStatus.QUEUED, owner="bob")
    claim = claimed(running)
    with session_scope() as session:
        trials.record_result(
            session, claim.id, claim.lease, TrialResult(TrialStatus.COMPLETED, 0.5)
        )
        job = jobs.lock_job(session, running)
        jobs.refresh_counters(session, job)  # type: ignore[arg-type]
        artifacts.store_model(
            session,
            job,
            claim.number,
            0.5,
            artifacts.ArtifactPayload(b"x" * 100, "0" * 64, {}),
            1,  # type: ignore[arg-type]
        )
        artifacts.store_checkpoint(session, running, claim.number, b"y" * 10)
    with session_scope() as session:
        used = owners.usage(session, "local")
        assert (used.active_jobs, used.pending_trials, used.stored_bytes) == (1, 9, 110)
        assert owners.usage(session, "bob").active_jobs == 1
        assert owners.usage(session, "nobody") == owners.Usage(0, 0, 0)


def test_keys_verify_until_revoked(store: str) -> None:
    with session_scope() as session:
        key = owners.create_key(session, "alice")
    with session_scope() as session:
        check = owners.verify_key(session, key.token)
        assert (check.owner, check.key_id, check.refused) == ("alice", key.id, None)
        assert owners.verify_key(session, key.token[:-1] + "x").refused
        assert owners.revoke_key(session, key.id)
        assert not owners.revoke_key(session, key.id)
    with session_scope() as session:
        assert owners.verify_key(session, key.token).refused == "invalid or revoked API key"
    with pytest.raises(owners.InvalidOwnerName):
        owners.check_owner_name("../etc")


def test_keys_expire_and_record_their_last_use(store: str) -> None:
    with session_scope() as session:
        soon = owners.create_key(session, "alice", utcnow() + timedelta(seconds=1))
        never = owners.create_key(session, "alice")
    with session_scope() as session:
        assert owners.verify_key(session, soon.token).refused is None
    with session_scope() as session:
        used = {k.id: as_utc(k.last_used_at) for k in owners.list_keys(session, "alice")}
    assert used[soon.id] is not None and used[never.id] is None
    assert utcnow() - used[soon.id] < timedelta(seconds=30)  # type: ignore[operator]
    with session_scope() as session:  # within a minute: not written again
        owners.verify_key(session, soon.token)
        assert as_utc(session.get(ApiKey, soon.id).last_used_at) == used[soon.id]  # type: ignore[union-attr]
    time.sleep(1.1)
    with session_scope() as session:
        refused = owners.verify_key(session, soon.token).refused
        assert refused is not None and refused.startswith("API key expired at")
        assert owners.verify_key(session, never.token).refused is None


def test_an_owner_may_have_a_request_rate_of_its_own(store: str) -> None:
    with session_scope() as session:
        key = owners.create_key(session, "alice")
        owners.set_quotas(session, "alice", requests_per_minute=5)
    with session_scope() as session:
        assert owners.verify_key(session, key.token).requests_per_minute == 5
        owners.set_quotas(session, "alice", reset=True)
    with session_scope() as session:
        assert owners.verify_key(session, key.token).requests_per_minute is None


def test_quota_overrides_and_reset(store: str) -> None:
    with session_scope() as session:
        owners.set_quotas(session, "alice", active_jobs=2, stored_bytes=10)
    with session_scope() as session:
        row = owners.get_owner(session, "alice")
        assert (row.quota_active_jobs, row.quota_stored_bytes) == (2, 10)  # type: ignore[union-attr]
        owners.set_quotas(session, "alice", reset=True, pending_trials=5)
    with session_scope() as session:
        row = owners.get_owner(session, "alice")
        assert (row.quota_active_jobs, row.quota_pending_trials) == (None, 5)  # type: ignore[union-attr]


def test_the_owner_lock_serialises_concurrent_sessions(postgres_url: str) -> None:
    order: list[str] = []
    with session_scope() as first:
        owners.lock_owner(first, "alice")
        order.append("first")

        def second() -> None:
            with session_scope() as session:
                owners.lock_owner(session, "alice")
                order.append("second")

        waiter = threading.Thread(target=second)
        waiter.start()
        waiter.join(timeout=0.5)
        assert waiter.is_alive()  # waits for the first one's commit
        order.append("first commits")
    waiter.join(timeout=10)
    assert order == ["first", "first commits", "second"]
