"""JSON bodies are read strictly: the media type must say UTF-8 JSON (415), and a body that is
not one unambiguous JSON document is a 422 naming what is wrong, never a 500 or a silent
guess. Numbers are numbers: a string or a boolean where a number goes is refused, not coerced."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.helpers import SPEC, job_count

JOBS = "/api/v1/jobs"


def _post(client: TestClient, body: bytes, content_type: str | None = "application/json") -> Any:
    headers = {"content-type": content_type} if content_type else {}
    return client.post(JOBS, content=body, headers=headers)


def _json_invalid(response: Any) -> str:
    assert response.status_code == 422, response.text
    (detail,) = response.json()["detail"]
    assert (detail["field"], detail["type"]) == ("body", "json_invalid")
    assert job_count() == 0
    return str(detail["message"])


def test_a_5000_digit_integer_is_a_422(client: TestClient) -> None:
    body = json.dumps(SPEC)[:-1] + ', "name": "x", "extra": ' + "9" * 5000 + "}"
    assert "an integer of 5000 digits (at most 100)" in _json_invalid(_post(client, body.encode()))


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"dataset": {"name": "iris"}, "dataset": {"name": "digits"}}', "duplicate key 'dataset'"),
        ('{"dataset": {"name": "iris", "max_rows": NaN}}', "NaN is not JSON"),
        ('{"dataset": {"name": "iris", "validation_split": 1e400}}', "1e400 is out of range"),
        ('{"dataset": {"name": "iris"}', "Expecting ',' delimiter"),
        ("[" * 100_000, "nested too deeply"),
    ],
)  # fmt: skip
def test_an_ambiguous_or_broken_document_is_a_422(
    client: TestClient, text: str, reason: str
) -> None:
    assert reason in _json_invalid(_post(client, text.encode()))


def test_a_body_that_is_not_utf8_is_a_422(client: TestClient) -> None:
    utf16 = json.dumps(SPEC).encode("utf-16")
    assert "not UTF-8" in _json_invalid(_post(client, utf16))


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-16"]
)  # fmt: skip
def test_a_body_not_declared_as_utf8_json_is_a_415(
    client: TestClient, content_type: str | None
) -> None:
    response = _post(client, json.dumps(SPEC).encode(), content_type)
    assert response.status_code == 415, response.text
    assert response.json()["error"] == "unsupported_media_type"
    assert "application/json" in response.json()["detail"]
    assert job_count() == 0


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=UTF-8", "application/vnd.hpsearch+json"]
)  # fmt: skip
def test_json_media_types_are_accepted(client: TestClient, content_type: str) -> None:
    response = _post(client, json.dumps(SPEC).encode(), content_type)
    assert response.status_code == 202, response.text


def test_predict_bodies_are_read_the_same_way(client: TestClient) -> None:
    url = f"{JOBS}/no-such-job/predict"
    response = client.post(url, content=b'{"rows": [[1]]}', headers={"content-type": "text/plain"})
    assert response.status_code == 415
    response = client.post(url, content=b'{"rows": [[1]], "rows": [[2]]}',
                           headers={"content-type": "application/json"})  # fmt: skip
    assert response.status_code == 422 and "duplicate key 'rows'" in response.text


def test_an_integral_number_is_an_integer_whatever_its_literal(client: TestClient) -> None:
    # JSON has one number type, and JSON Schema's "integer" takes 2.0: so does the service.
    body = json.dumps({**SPEC, "training": {**SPEC.get("training", {}), "epochs": 2.0}})
    assert '"epochs": 2.0' in body
    response = client.post(JOBS, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 202, response.text
    job = client.get(response.json()["url"]).json()
    epochs = job["spec"]["training"]["epochs"]
    assert epochs == {"type": "fixed", "value": 2} and isinstance(epochs["value"], int)


@pytest.mark.parametrize(
    ("section", "value", "field"),
    [
        ({"search": {"max_trials": "3"}}, "3", "search.max_trials"),
        ({"search": {"max_trials": True}}, True, "search.max_trials"),
        ({"training": {"epochs": 2.5}}, 2.5, "training.epochs"),
        ({"optimizer": {"learning_rate": "0.01"}}, "0.01", "optimizer.learning_rate"),
        ({"dataset": {"name": "iris", "validation_split": "0.2"}}, "0.2", "dataset.validation_split"),
    ],
)  # fmt: skip
def test_numbers_given_as_strings_or_booleans_are_refused(
    client: TestClient, section: dict[str, Any], value: Any, field: str
) -> None:
    spec = {**SPEC, **{k: {**SPEC.get(k, {}), **v} for k, v in section.items()}}
    response = client.post(JOBS, json=spec)
    assert response.status_code == 422, response.text
    fields = [d["field"] for d in response.json()["detail"]]
    assert any(f.startswith(field) for f in fields), fields
