"""A job's trials as CSV: the table parsed back, its columns and order, owners kept apart, the
header alone for a job without trials, and the route as the OpenAPI document describes it."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from api.trial_csv import LEADING_COLUMNS, TRAILING_COLUMNS, cell
from db.engine import session_scope
from db.models import JobStatus, TrialStatus
from db.repositories import owners
from tests.api.conftest import ClientFactory
from tests.api.helpers import insert_job, insert_trial

API = "/api/v1"


def _csv(client: TestClient, job_id: str, **headers: str) -> list[dict[str, str]]:
    response = client.get(f"{API}/jobs/{job_id}/trials.csv", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == f'attachment; filename="{job_id}-trials.csv"'
    return list(csv.DictReader(io.StringIO(response.text)))


def _header(client: TestClient, job_id: str) -> list[str]:
    text = client.get(f"{API}/jobs/{job_id}/trials.csv").text
    return next(csv.reader(io.StringIO(text)))


def test_every_trial_by_number_with_its_hyperparameters_and_metrics(
    any_client: TestClient,
) -> None:
    job_id = insert_job(status=JobStatus.SUCCEEDED)
    # inserted out of order, with hyperparameters that differ between trials
    insert_trial(
        job_id,
        2,
        hyperparameters={"depth": 2, "units_10": 64, "units_2": 16, "batch_norm": True},
        score=0.875,
        best_epoch=3,
        epochs=4,
        metrics={"val_accuracy": 0.875, "loss": 0.25},
        parameter_count=1234,
        attempts=2,
        proposed_at=datetime(2025, 1, 1, 11, 59, tzinfo=UTC),
        finished_at=datetime(2025, 1, 1, 12, 5, tzinfo=UTC),
    )
    insert_trial(
        job_id,
        0,
        hyperparameters={"depth": 1, "activation": "relu", "learning_rate": 0.001},
        score=0.5,
        metrics={"val_accuracy": 0.5, "val_loss": 1.5},
    )
    insert_trial(
        job_id,
        1,
        status=TrialStatus.FAILED,
        score=None,
        hyperparameters={"depth": 1, "activation": "=HYPERLINK(1)"},
        failure_reason="-1 is not a valid shape, =cmd",
        duration_s=None,
        started_at=None,
    )
    other = insert_job()
    insert_trial(other, 0, hyperparameters={"secret": 1}, metrics={"other": 1.0})

    rows = _csv(any_client, job_id)
    assert [r["number"] for r in rows] == ["0", "1", "2"]
    header = _header(any_client, job_id)
    assert header == [
        *LEADING_COLUMNS,
        # the union of the trials' names, digits in numeric order
        "activation",
        "batch_norm",
        "depth",
        "learning_rate",
        "units_2",
        "units_10",
        "metric:loss",
        "metric:val_accuracy",
        "metric:val_loss",
        *TRAILING_COLUMNS,
    ]
    first, failed, last = rows
    assert first["status"] == "completed" and float(first["score"]) == 0.5
    assert (first["activation"], first["depth"], float(first["learning_rate"])) == (
        "relu",
        "1",
        1e-3,
    )
    assert first["units_2"] == first["batch_norm"] == ""  # not a hyperparameter of this trial
    assert (first["metric:val_accuracy"], first["metric:val_loss"], first["metric:loss"]) == (
        "0.5",
        "1.5",
        "",
    )
    assert failed["status"] == "failed" and failed["score"] == failed["duration_s"] == ""
    # text a spreadsheet would run as a formula is defused; numbers are left alone
    assert failed["activation"] == "'=HYPERLINK(1)"
    assert failed["failure_reason"] == "'-1 is not a valid shape, =cmd"
    assert (last["batch_norm"], last["units_2"], last["units_10"]) == ("true", "16", "64")
    assert (last["best_epoch"], last["epochs_run"], last["attempts"]) == ("3", "4", "2")
    assert last["parameter_count"] == "1234" and float(last["duration_s"]) == 3.0
    assert datetime.fromisoformat(last["started_at"]) == datetime(2025, 1, 1, 0, 2, tzinfo=UTC)
    assert last["proposed_at"] == "2025-01-01T11:59:00+00:00"
    assert last["finished_at"] == "2025-01-01T12:05:00+00:00"
    assert "secret" not in header and "metric:other" not in header


def test_a_job_without_trials_is_the_header_alone(client: TestClient) -> None:
    job_id = insert_job()
    response = client.get(f"{API}/jobs/{job_id}/trials.csv")
    assert response.status_code == 200
    assert response.text == ",".join([*LEADING_COLUMNS, *TRAILING_COLUMNS]) + "\r\n"
    assert _csv(client, job_id) == []


def test_hyperparameters_never_collide_with_other_columns(client: TestClient) -> None:
    job_id = insert_job()
    insert_trial(
        job_id,
        0,
        hyperparameters={"score": 1, "metric:loss": 2, "hp:x": 3, "epochs": 4},
        metrics={"loss": 0.1},
    )
    (row,) = _csv(client, job_id)
    assert row["score"] == "0.5"
    assert (row["hp:score"], row["hp:metric:loss"], row["hp:hp:x"]) == ("1", "2", "3")
    assert (row["epochs"], row["metric:loss"]) == ("4", "0.1")


def test_floats_keep_full_precision_and_odd_values_are_text() -> None:
    assert cell(0.1 + 0.2) == "0.30000000000000004"
    assert float(cell(1e-300)) == 1e-300
    assert (cell(float("nan")), cell(float("-inf"))) == ("nan", "-inf")
    assert (cell(None), cell(False), cell(-3), cell(-0.5)) == ("", "false", "-3", "-0.5")
    assert cell([1, 2]) == "[1, 2]"
    assert cell("@SUM(A1)") == "'@SUM(A1)" and cell("plain") == "plain"


def test_unknown_jobs_are_a_json_404(client: TestClient) -> None:
    for job_id in ["0" * 32, "not-an-id", "x" * 500]:
        response = client.get(f"{API}/jobs/{job_id}/trials.csv")
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"] == "not_found"


@pytest.fixture
def keyed(sqlite_url: str, make_client: ClientFactory) -> TestClient:
    return make_client(auth_mode="keys")


def _bearer(owner: str) -> dict[str, str]:
    with session_scope() as session:
        return {"Authorization": f"Bearer {owners.create_key(session, owner).token}"}


def test_another_owners_job_is_not_found(keyed: TestClient) -> None:
    alice, bob = _bearer("alice"), _bearer("bob")
    job_id = insert_job(owner="alice")
    insert_trial(job_id, 0, hyperparameters={"depth": 2})
    assert [r["depth"] for r in _csv(keyed, job_id, **alice)] == ["2"]
    response = keyed.get(f"{API}/jobs/{job_id}/trials.csv", headers=bob)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert "depth" not in response.text
    assert keyed.get(f"{API}/jobs/{job_id}/trials.csv").status_code == 401


def test_openapi_documents_csv_and_json_errors(client: TestClient) -> None:
    document = client.get(f"{API}/openapi.json").json()
    responses = document["paths"][f"{API}/jobs/{{job_id}}/trials.csv"]["get"]["responses"]
    ok = responses["200"]["content"]["text/csv"]
    assert ok["schema"] == {"type": "string"}
    example = list(csv.DictReader(io.StringIO(ok["example"])))
    assert [r["number"] for r in example] == ["0", "1"]
    assert "Content-Disposition" in responses["200"]["headers"]
    for status in ("404", "422", "503"):
        assert list(responses[status]["content"]) == ["application/json"]
