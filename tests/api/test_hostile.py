"""Hostile input: path-like and control-character names, huge numbers and lists, deep JSON,
SQL metacharacters in filters. Each gets a 4xx naming what is wrong; nothing is stored."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from fastapi.testclient import TestClient

from search_spaces import limits
from tests.api.helpers import SPEC, insert_job, job_count

API = "/api/v1"
CSV = b"a,b,label\n" + b"".join(b"%d,%d,%d\n" % (i, i * 3, i % 2) for i in range(20))
BAD_NAMES = ["../../etc/passwd", "/etc/passwd", "C:\\Windows\\system32", "a\x00b", "tab\there"]


def _detail(response: Any, status: int = 422) -> list[dict[str, Any]]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == "validation_error"
    return body["detail"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_path_like_or_control_names_are_refused(any_client: TestClient, name: str) -> None:
    detail = _detail(any_client.post(f"{API}/jobs", json={**SPEC, "name": name}))
    assert detail[0]["field"] == "name"
    assert detail[0]["limit"] == limits.NAME_PATTERN
    detail = _detail(
        any_client.post(
            f"{API}/datasets",
            files={"file": ("d.csv", CSV)},
            data={"target": "label", "name": name},
        )
    )
    assert detail[0]["field"] == "name"
    assert job_count() == 0
    assert (
        any_client.get(f"{API}/datasets").json()["total"]
        == any_client.get(f"{API}/datasets").json()["total"]
    )


@pytest.mark.parametrize(
    ("filename", "stored"),
    [
        ("../../etc/passwd.csv", "passwd.csv"),
        ("..\\..\\windows\\win.csv", "win.csv"),
        ("/abs/path/data.csv", "data.csv"),
    ],
)
def test_upload_file_names_are_reduced_to_a_label(
    any_client: TestClient, filename: str, stored: str
) -> None:
    response = any_client.post(
        f"{API}/datasets", files={"file": (filename, CSV)}, data={"target": "label"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == stored


def test_control_characters_in_a_raw_multipart_file_name(any_client: TestClient) -> None:
    boundary = "hostile"
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="target"\r\n\r\nlabel\r\n'
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="../a\x00b\x07.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + CSV
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = any_client.post(
        f"{API}/datasets",
        content=body,
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "ab.csv"


@pytest.mark.parametrize(
    ("section", "value", "field", "limit"),
    [
        ("model", {"units": 1_000_000_000}, "model.units", limits.MAX_UNITS),
        ("model", {"units": 10**40}, "model.units", limits.MAX_UNITS),
        ("search", {"max_trials": 1_000_000}, "search.max_trials", limits.MAX_TRIALS),
        ("training", {"epochs": 10**12}, "training.epochs", limits.MAX_EPOCHS),
        (
            "model",
            {"units": {"type": "choice", "values": list(range(1, 100_001))}},
            "model.units.values",
            limits.MAX_CHOICES,
        ),
        ("model", {"layers": [8] * 100_000}, "model.layers", limits.MAX_LAYERS),
    ],
)
def test_huge_numbers_and_lists_name_the_limit(
    client: TestClient, section: str, value: dict[str, Any], field: str, limit: int
) -> None:
    spec = copy.deepcopy(SPEC)
    spec[section] = {**spec.get(section, {}), **value}
    if "layers" in value:
        spec["model"].pop("depth", None)
        spec["model"].pop("units", None)
    detail = _detail(client.post(f"{API}/jobs", json=spec))
    match = [d for d in detail if d["field"] == field]
    assert match and match[0]["limit"] == limit, detail
    assert job_count() == 0


def test_non_finite_and_deeply_nested_json(client: TestClient) -> None:
    body = b'{"dataset": {"name": "iris"}, "optimizer": {"learning_rate": 1e999}}'
    detail = _detail(
        client.post(f"{API}/jobs", content=body, headers={"content-type": "application/json"})
    )
    assert detail[0]["field"] == "body" and "1e999 is out of range" in detail[0]["message"]
    deep = b"[" * 200_000 + b"]" * 200_000
    response = client.post(
        f"{API}/jobs", content=deep, headers={"content-type": "application/json"}
    )
    detail = _detail(response, 413) if response.status_code == 413 else _detail(response)
    assert job_count() == 0
    nested = b"[" * 50_000 + b"]" * 50_000
    detail = _detail(
        client.post(f"{API}/jobs", content=nested, headers={"content-type": "application/json"})
    )
    assert detail[0]["field"] == "body"
    assert "deeply" in detail[0]["message"]


def test_sql_metacharacters_in_filters_and_sort_keys(any_client: TestClient) -> None:
    job_id = insert_job()
    for path, params, field in [
        ("/jobs", {"status": "queued' OR '1'='1"}, "status"),
        (f"/jobs/{job_id}/trials", {"sort": "score; DROP TABLE jobs; --"}, "sort"),
        (f"/jobs/{job_id}/trials", {"order": "asc, (SELECT 1)"}, "order"),
        (f"/jobs/{job_id}/trials", {"status": "completed\x00"}, "status"),
        ("/jobs", {"limit": "1 OR 1=1"}, "limit"),
        ("/datasets", {"offset": "-1"}, "offset"),
    ]:
        detail = _detail(any_client.get(API + path, params=params))
        assert detail[0]["field"] == field, (path, params, detail)
    assert any_client.get(f"{API}/jobs/{job_id}").status_code == 200


@pytest.mark.parametrize(
    "path", ["/jobs/{id}", "/jobs/{id}/trials/0", "/jobs/{id}/model", "/datasets/{id}"]
)
def test_a_404_does_not_echo_a_huge_id(client: TestClient, path: str) -> None:
    huge = "x" * 10_000
    response = client.get(API + path.format(id=huge))
    assert response.status_code == 404, response.text
    detail = response.json()["detail"]
    assert len(detail) < 200 and "(10000 characters)" in detail, detail


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/jobs", "GET, POST"),
        ("DELETE", "/jobs", "GET, POST"),
        ("PUT", "/jobs/abc", "GET, DELETE"),
        ("GET", "/jobs/abc/cancel", "POST"),
        ("PATCH", "/health", "GET"),
    ],
)
def test_a_405_names_every_allowed_method(
    client: TestClient, method: str, path: str, allowed: str
) -> None:
    response = client.request(method, API + path)
    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.json()["error"] == "method_not_allowed"
    for other in allowed.split(", "):  # and each one it names is really answered
        assert client.request(other, API + path).status_code != 405
