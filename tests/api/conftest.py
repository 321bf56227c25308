"""API test fixtures: an app on the test's migrated database, driven by FastAPI's TestClient."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from db.settings import Settings

ClientFactory = Callable[..., TestClient]


@pytest.fixture
def make_client() -> Iterator[ClientFactory]:
    """Build clients on the configured (already migrated) database; closed after the test."""
    opened: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        overrides.setdefault("migrate_on_start", False)
        # no TensorFlow child per test app: the few prediction tests start it on demand
        overrides.setdefault("prewarm_predictor", False)
        # job pages built in the app's own threads: no page-building child per test app
        # (tests/api/test_page_builder.py and the browser tests build in the child)
        overrides.setdefault("dashboard_build_process", False)
        client = TestClient(create_app(Settings(**overrides)), raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def client(sqlite_url: str, make_client: ClientFactory) -> TestClient:
    """A client on a SQLite database with the embedded broker."""
    return make_client()


@pytest.fixture
def any_client(database_url: str, make_client: ClientFactory) -> TestClient:
    """A client run once on SQLite and once on PostgreSQL."""
    return make_client()
