"""Health, catalogue, limits, startup migrations, and the API process staying TensorFlow-free."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from search_spaces.datasets import BUILTIN_DATASETS
from search_spaces.limits import LIMITS
from tests.api.conftest import ClientFactory
from tests.api.helpers import SPEC

API = "/api/v1"
ROOT = Path(__file__).resolve().parents[2]


def test_health_ok(any_client: TestClient) -> None:
    response = any_client.get(f"{API}/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["database"], body["broker"]) == ("ok", "ok", "ok")


def test_health_names_the_broker(sqlite_url: str, make_client: ClientFactory) -> None:
    client = make_client(broker_url="redis://127.0.0.1:1/0", broker_connect_timeout_s=1.0)
    started = time.monotonic()
    response = client.get(f"{API}/health")
    assert time.monotonic() - started < 5
    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["database"]) == ("unavailable", "ok")
    assert body["broker"] != "ok"


def test_unreachable_database_is_503(make_client: ClientFactory) -> None:
    client = make_client(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    response = client.get(f"{API}/jobs")
    assert response.status_code == 503
    assert response.json()["error"] == "database_unavailable"
    health = client.get(f"{API}/health")
    assert health.status_code == 503
    assert health.json()["database"] != "ok"


def test_datasets_and_offline_availability(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    (tmp_path / "keras" / "datasets").mkdir(parents=True)
    (tmp_path / "keras" / "datasets" / "mnist.npz").write_bytes(b"")
    body = client.get(f"{API}/datasets").json()
    assert body["total"] == len(BUILTIN_DATASETS)
    by_name = {d["name"]: d for d in body["items"]}
    assert set(by_name) == set(BUILTIN_DATASETS)
    assert by_name["digits"]["available_offline"] is True
    assert by_name["mnist"]["available_offline"] is True
    assert by_name["fashion_mnist"]["available_offline"] is False
    assert by_name["mnist"]["input_shape"] == [28, 28]
    assert by_name["mnist"]["n_features"] == 784
    assert by_name["california_housing"]["task"] == "regression"


def test_limits(client: TestClient) -> None:
    assert client.get(f"{API}/limits").json() == LIMITS


def test_docs_and_openapi(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get(f"{API}/openapi.json").json()["paths"]
    assert f"{API}/jobs/{{job_id}}/predict" in paths


def test_migrates_on_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make_client: ClientFactory
) -> None:
    monkeypatch.setenv("HPSEARCH_DATABASE_URL", f"sqlite:///{tmp_path / 'fresh.db'}")
    client = make_client(migrate_on_start=True)
    assert client.post(f"{API}/jobs", json=SPEC).status_code == 202


def test_api_process_never_imports_tensorflow(sqlite_url: str) -> None:
    script = """
import json, sys
from fastapi.testclient import TestClient
import api.main
from db.settings import Settings
with TestClient(api.main.create_app(Settings(migrate_on_start=False, prewarm_predictor=False))) as client:
    health = client.get("/api/v1/health").status_code
    submit = client.post("/api/v1/jobs", json=json.loads(sys.argv[1])).status_code
    jobs = client.get("/api/v1/jobs").status_code
loaded = [m for m in ("tensorflow", "keras", "keras_tuner", "worker") if m in sys.modules]
print(json.dumps({"statuses": [health, submit, jobs], "loaded": loaded}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(SPEC)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"statuses": [200, 202, 200], "loaded": []}


def test_the_openapi_document_names_operations_and_documents_errors(
    make_client: ClientFactory,
) -> None:
    doc = make_client(auth_mode="keys").get("/openapi.json").json()
    operations = [op for ops in doc["paths"].values() for op in ops.values()]
    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids)) and "submit_job" in ids and "list_trials" in ids
    assert all(id_.isidentifier() and id_.islower() for id_ in ids), ids
    text = str(doc)
    assert "HTTPValidationError" not in text  # every 422 is documented with the body it has
    problem = doc["components"]["schemas"]["FieldProblem"]
    assert set(problem["properties"]) == {"field", "message", "limit", "type"}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if path.startswith("/api/v1/jobs") or path.startswith("/api/v1/datasets"):
                assert {"401", "422", "429", "503"} <= set(op["responses"]), (method, path)
                assert "Retry-After" in op["responses"]["429"]["headers"]
            for body in op.get("requestBody", {}).get("content", {}).values():
                assert body.get("examples") or body.get("example"), (method, path)
    assert "415" in doc["paths"]["/api/v1/jobs"]["post"]["responses"]
    # Names a person would give: no generic or form-body names made by the framework.
    names = set(doc["components"]["schemas"])
    assert {"JobPage", "TrialPage", "DatasetUpload", "Limits", "UnitsRange"} <= names
    assert all(name.isidentifier() and "_" not in name for name in names), sorted(names)
    download = doc["paths"]["/api/v1/jobs/{job_id}/model"]["get"]["responses"]["200"]
    assert download["content"]["application/octet-stream"]["schema"]["format"] == "binary"


def test_the_open_mode_document_asks_for_no_key(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    operations = [op for ops in doc["paths"].values() for op in ops.values()]
    assert not any("security" in op or "401" in op["responses"] for op in operations)
    assert "securitySchemes" not in doc["components"]
