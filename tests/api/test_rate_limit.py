"""API keys expire and each has a request rate (OWASP API4): one client over its rate gets 429
with Retry-After and never starves another key; an owner may have a rate of its own; with a Redis
broker every API process shares the counts."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from db.engine import session_scope
from db.repositories import owners
from db.settings import Settings
from db.values import utcnow
from tests.api.conftest import ClientFactory

API = "/api/v1"


def _token(owner: str, expires_in_s: float | None = None) -> str:
    expires = None if expires_in_s is None else utcnow() + timedelta(seconds=expires_in_s)
    with session_scope() as session:
        return owners.create_key(session, owner, expires).token


def _get(client: TestClient, token: str) -> int:
    return client.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"}).status_code


def test_a_key_over_its_rate_gets_429_and_starves_no_other(
    sqlite_url: str, make_client: ClientFactory
) -> None:
    client = make_client(auth_mode="keys", requests_per_minute=3)
    greedy, other = _token("greedy"), _token("patient")
    assert [_get(client, greedy) for _ in range(3)] == [200, 200, 200]
    refused = client.get(f"{API}/jobs", headers={"Authorization": f"Bearer {greedy}"})
    assert refused.status_code == 429
    assert refused.json()["error"] == "rate_limited" and refused.json()["limit"] == 3
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert _get(client, other) == 200  # another key has its own window


def test_an_owner_has_a_rate_of_its_own(sqlite_url: str, make_client: ClientFactory) -> None:
    client = make_client(auth_mode="keys", requests_per_minute=2)
    token = _token("bulk")
    with session_scope() as session:
        owners.set_quotas(session, "bulk", requests_per_minute=5)
    assert [_get(client, token) for _ in range(6)] == [200] * 5 + [429]


def test_api_processes_share_the_counts_in_redis(
    sqlite_url: str, redis_url: str, make_client: ClientFactory
) -> None:
    first = make_client(auth_mode="keys", requests_per_minute=3, broker_url=redis_url)
    second = make_client(auth_mode="keys", requests_per_minute=3, broker_url=redis_url)
    token = _token("spread")
    assert [_get(first, token), _get(second, token), _get(first, token)] == [200] * 3
    assert _get(second, token) == 429


def test_an_expired_key_is_refused(sqlite_url: str, make_client: ClientFactory) -> None:
    client = make_client(auth_mode="keys")
    token = _token("temp", expires_in_s=1)
    assert _get(client, token) == 200
    time.sleep(1.2)
    response = client.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["detail"].startswith("API key expired at")


def test_the_cli_polls_well_inside_the_default_rate() -> None:
    polls_per_minute = 60 / 1.0  # `hpsearch run/watch --interval` default
    assert polls_per_minute * 4 <= Settings().requests_per_minute
    with pytest.raises(ValueError):
        Settings(requests_per_minute=0)
