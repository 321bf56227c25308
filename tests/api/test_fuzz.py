"""Schema-driven fuzzing of the real app (schemathesis on our OpenAPI document), with every check
schemathesis has, in the open mode and with API keys required: no 5xx, every status and body as
documented, data the schema calls valid accepted and data it calls invalid refused, headers and
content types as documented. Runs on migrated SQLite and PostgreSQL databases with the embedded
broker."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import CHECKS, load_all_checks, positive_data_acceptance

from api.main import create_app
from db.engine import session_scope
from db.repositories import owners
from db.settings import Settings

load_all_checks()
#: every check schemathesis ships (its registry), none left out.
ALL_CHECKS = CHECKS.get_all()


@pytest.fixture(params=["open", "keys"])
def auth_mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def api_schema(database_url: str, auth_mode: str) -> Iterator[schemathesis.BaseSchema]:
    app = create_app(
        Settings(
            migrate_on_start=False,
            auth_mode=auth_mode,
            prewarm_predictor=False,
            requests_per_minute=1_000_000,  # the fuzzer is one very busy client
        )
    )
    with TestClient(app):  # runs the app's startup/shutdown
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture
def auth(auth_mode: str) -> dict[str, str]:
    if auth_mode == "open":
        return {}
    with session_scope() as session:
        return {"Authorization": f"Bearer {owners.create_key(session, 'fuzzer').token}"}


#: what a request the schema calls valid may still get, besides success: no key (401), a job or
#: dataset that does not exist (404), a state that forbids it (409), a quota reached (429).
POSITIVE_STATUSES = {401, 404, 409, 429}
#: problems of a 422 that no JSON Schema can state: rules across fields (a range's max >= min, a
#: grid's size), resources (the largest network), an upload's content, uploads that do not exist.
RULES_BEYOND_THE_SCHEMA = {
    "spec_rule",
    "value_error",
    "invalid_input",
    "input_shape",
    "invalid_file",
}


def refused_only_by_rules(case: schemathesis.Case, response: Any) -> None:
    """``positive_data_acceptance``, made exact: schema-valid data is accepted, or refused with
    a 422 naming only rules the schema cannot state (never a type, bound, enum or pattern)."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return
    status = response.status_code
    if status < 300 or status in POSITIVE_STATUSES:
        return
    assert status == 422, (case.method, case.formatted_path, status, response.text[:500])
    kinds = {problem["type"] for problem in response.json()["detail"]}
    assert kinds <= RULES_BEYOND_THE_SCHEMA, (case.method, case.formatted_path, response.text[:800])


def check_response(case: schemathesis.Case, auth: dict[str, str]) -> None:
    response = case.call(headers=auth)
    case.validate_response(
        response, checks=ALL_CHECKS, excluded_checks=[positive_data_acceptance], headers=auth
    )
    refused_only_by_rules(case, response)
    assert response.status_code != 401, "the fuzzer must get past authentication"


def test_every_check_passes_on_every_operation(
    api_schema: schemathesis.BaseSchema, auth: dict[str, str]
) -> None:
    # hypothesis drives each operation directly (schemathesis's pytest plugin predates pytest 9).
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 15
    failures: list[Any] = []
    for operation in operations:
        fuzz = settings(
            max_examples=40,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )(given(case=operation.as_strategy())(check_response))
        try:
            fuzz(auth=auth)
        except Exception as error:  # every operation is fuzzed; the failures are listed at the end
            found = getattr(error, "exceptions", [error])
            failures += [f"{operation.label}: {type(e).__name__}: {e}"[:2000] for e in found]
    assert not failures, "\n\n".join(failures)
