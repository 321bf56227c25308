"""Shared fixtures: a freshly migrated database per test, and the real PostgreSQL/Redis servers.

Tests that need PostgreSQL or Redis skip with a reason when the server is unreachable, unless
``HPSEARCH_REQUIRE_SERVICES=1`` (set by CI), which turns those skips into failures.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from sqlalchemy import create_engine, text

from db.engine import reset_engines
from db.migrate import upgrade
from db.settings import get_settings
from tests.pg_cluster import ThrowawayCluster
from tests.pg_cluster import available as pg_cluster_available

POSTGRES_ADMIN_URL = os.environ.get(
    "HPSEARCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("HPSEARCH_TEST_REDIS_URL", "redis://127.0.0.1:6379")
REQUIRE_SERVICES = os.environ.get("HPSEARCH_REQUIRE_SERVICES", "") not in ("", "0", "false")


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url.replace("postgresql+psycopg", "postgresql"))
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def require_service(name: str, url: str, default_port: int) -> None:
    """Skip (or fail, under HPSEARCH_REQUIRE_SERVICES=1) when a server is unreachable."""
    if _reachable(url, default_port):
        return
    message = f"{name} is not reachable at {url}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} and HPSEARCH_REQUIRE_SERVICES=1")
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own data dir and default URLs, and no cached engines or settings."""
    monkeypatch.setenv("HPSEARCH_DATA_DIR", str(tmp_path / "hpsearch-data"))
    for var in ("HPSEARCH_DATABASE_URL", "HPSEARCH_BROKER_URL"):
        monkeypatch.delenv(var, raising=False)
    get_settings.cache_clear()
    reset_engines()
    yield
    reset_engines()
    get_settings.cache_clear()


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated SQLite database, set as the configured database."""
    url = f"sqlite:///{tmp_path / 'test.db'}"
    upgrade(url)
    monkeypatch.setenv("HPSEARCH_DATABASE_URL", url)
    get_settings.cache_clear()
    return url


@pytest.fixture
def postgres_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A new, migrated PostgreSQL database (dropped afterwards), set as the configured database."""
    require_service("PostgreSQL", POSTGRES_ADMIN_URL, 5432)
    name = f"hpsearch_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    monkeypatch.setenv("HPSEARCH_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        yield url
    finally:
        reset_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Runs the test once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue(
        {"sqlite": "sqlite_url", "postgresql": "postgres_url"}[request.param]
    )


@pytest.fixture
def throwaway_postgres(monkeypatch: pytest.MonkeyPatch) -> Iterator[ThrowawayCluster]:
    """A PostgreSQL cluster of the test's own (to restart, stop and start), migrated and set as
    the configured database; destroyed afterwards. The shared server is never touched."""
    if not pg_cluster_available():
        if REQUIRE_SERVICES:
            pytest.fail("PostgreSQL's server binaries are needed (HPSEARCH_REQUIRE_SERVICES=1)")
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    cluster = ThrowawayCluster().create()
    try:
        upgrade(cluster.url)
        monkeypatch.setenv("HPSEARCH_DATABASE_URL", cluster.url)
        get_settings.cache_clear()
        reset_engines()
        yield cluster
    finally:
        reset_engines()
        cluster.destroy()


@pytest.fixture
def redis_url() -> str:
    """A Redis database number of its own for this test (flushed before use)."""
    require_service("Redis", REDIS_URL, 6379)
    import redis

    db = 1 + uuid.uuid4().int % 14
    url = f"{REDIS_URL}/{db}"
    redis.Redis.from_url(url).flushdb()
    return url
