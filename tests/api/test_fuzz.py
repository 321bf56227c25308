"""Schema-driven fuzzing of the real app (schemathesis on our OpenAPI document).

Whatever a client sends, no request produces a 5xx, and every 4xx body says what is wrong
(``{"error": ..., "detail": ...}``). Runs on migrated SQLite and PostgreSQL databases with the
embedded broker, with API keys required and a valid key sent (401s are tested in test_auth).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from api.main import create_app
from db.engine import session_scope
from db.repositories import owners
from db.settings import Settings


@pytest.fixture
def api_schema(database_url: str) -> Iterator[schemathesis.BaseSchema]:
    app = create_app(Settings(migrate_on_start=False, auth_mode="keys", prewarm_predictor=False))
    with TestClient(app):  # runs the app's startup/shutdown
        yield schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)


@pytest.fixture
def auth() -> dict[str, str]:
    with session_scope() as session:
        return {"Authorization": f"Bearer {owners.create_key(session, 'fuzzer').token}"}


def check_response(case: schemathesis.Case, auth: dict[str, str]) -> None:
    response = case.call(headers=auth)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text[:500])
    assert response.status_code != 401, "the fuzzer must get past authentication"
    if 400 <= response.status_code < 500:
        body = response.json()
        assert set(body) >= {"error", "detail"}, body
        assert body["detail"], body


def test_no_request_gets_a_server_error(
    api_schema: schemathesis.BaseSchema, auth: dict[str, str]
) -> None:
    # hypothesis drives each operation directly (schemathesis's pytest plugin predates pytest 9).
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 10
    for operation in operations:
        fuzz = settings(
            max_examples=50,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )(given(case=operation.as_strategy())(check_response))
        fuzz(auth=auth)
