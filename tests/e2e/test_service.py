"""End to end over real HTTP with a real Celery worker process: submit, poll, inspect, download,
load, predict. Once on the embedded defaults (SQLite + kombu's SQLAlchemy broker), once on
PostgreSQL + Redis."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.service import (
    Service,
    compose_auth_mode,
    compose_command,
    session_processes,
    start_service,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

SPEC = {
    "name": "e2e-digits",
    "dataset": {"name": "digits", "max_rows": 300, "split_seed": 7},
    "model": {
        "depth": {"type": "int", "min": 1, "max": 2},
        "units": {"type": "choice", "values": [8, 16]},
        "activation": {"type": "choice", "values": ["relu", "selu"]},
        "kernel_initializer": "auto",
    },
    "optimizer": {
        "name": "adam",
        "learning_rate": {"type": "float", "min": 1e-3, "max": 1e-2, "sampling": "log"},
    },
    "training": {"epochs": 2, "batch_size": 32, "early_stopping": {"patience": 1}},
    "search": {"algorithm": "random", "max_trials": 3, "seed": 3, "top_k": 2},
}


def _run_and_check(service: Service, tmp_path: Path, api_key: str | None = None) -> None:
    api = f"{service.base_url}/api/v1"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(base_url=api, timeout=30, headers=headers) as client:
        submitted = client.post("/jobs", json=SPEC)
        assert submitted.status_code == 202, submitted.text
        job_id = submitted.json()["id"]

        deadline = time.monotonic() + 400
        seen_running = False
        while True:
            job = client.get(f"/jobs/{job_id}").json()
            seen_running |= job["status"] == "running"
            if job["status"] in ("succeeded", "failed", "cancelled"):
                break
            assert time.monotonic() < deadline, f"job still {job['status']}:\n{service.logs()}"
            time.sleep(1)
        assert job["status"] == "succeeded", f"{job}\n{service.logs()}"
        assert job["progress"] == pytest.approx(1.0)
        assert job["dataset_info"]["rows_train"] + job["dataset_info"]["rows_val"] == 300

        trials = client.get(f"/jobs/{job_id}/trials").json()
        assert trials["total"] == 3
        completed = [t for t in trials["items"] if t["status"] == "completed"]
        assert completed, trials
        assert job["trials_completed"] == len(completed)
        scores = [t["score"] for t in completed]
        assert scores == sorted(scores, reverse=True)  # leaderboard: best val_accuracy first
        assert job["best_score"] == pytest.approx(scores[0])
        assert job["best_trial_number"] == completed[0]["number"]

        for trial in trials["items"]:
            detail = client.get(f"/jobs/{job_id}/trials/{trial['number']}").json()
            assert len(detail["epochs"]) == detail["epochs_run"] >= 1
            assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(
                detail["epochs"][0]["metrics"]
            )
            assert set(detail["hyperparameters"]) >= {"depth", "activation", "learning_rate"}

        download = client.get(f"/jobs/{job_id}/model")
        assert download.status_code == 200, download.text
        model_path = tmp_path / "best.keras"
        model_path.write_bytes(download.content)

        rows = np.random.default_rng(0).uniform(0, 16, size=(5, 64)).round()
        predicted = client.post(f"/jobs/{job_id}/predict", json={"rows": rows.tolist()})
        assert predicted.status_code == 200, predicted.text
        body = predicted.json()

    import keras

    import search_spaces.keras_objects  # noqa: F401  (registers custom layers and schedules)

    model = keras.saving.load_model(model_path)
    local = model.predict(rows.astype("float32"), verbose=0)
    assert body["predictions"] == local.argmax(axis=1).tolist()
    np.testing.assert_allclose(body["probabilities"], local, rtol=1e-4, atol=1e-5)


@pytest.fixture
def embedded_service(tmp_path: Path) -> Iterator[Service]:
    service = start_service(tmp_path, database_url=None, broker_url=None)
    yield service
    service.stop()


@pytest.fixture
def distributed_service(tmp_path: Path, postgres_url: str, redis_url: str) -> Iterator[Service]:
    # the API keys mode, as the compose deployment runs
    service = start_service(
        tmp_path, database_url=postgres_url, broker_url=redis_url, auth_mode=compose_auth_mode()
    )
    yield service
    service.stop()


def _check_clean_stop(service: Service) -> None:
    """SIGTERM, as a supervisor sends it: the idle worker exits within 10 s, the API within a
    few, and neither leaves a process behind (the prediction process, resource trackers)."""
    sessions = {name: proc.pid for name, proc in service.processes.items()}
    worker_s = service.terminate("worker", timeout=30)
    api_s = service.terminate("api", timeout=30)
    assert worker_s < 10 and api_s < 10, (worker_s, api_s)
    time.sleep(1)  # what the exited processes leave is re-parented by now
    left = {name: session_processes(sid) for name, sid in sessions.items()}
    assert left == {"api": [], "worker": []}, left


def _status(service: Service) -> dict:
    """``hpsearch status --json`` where the service's database is."""
    hpsearch = Path(sys.executable).parent / "hpsearch"
    run = subprocess.run(
        [str(hpsearch), "status", "--json"],
        env=service.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(run.stdout)


def _check_status(service: Service) -> None:
    """The idle worker is alive (its reaper says so) and nothing waits; once the worker has
    stopped, it is said to have."""
    state = _status(service)
    assert state["workers_alive"] == 1, state
    assert state["queue"]["waiting_trials"] == 0 and state["trials"]["completed"] >= 1
    _check_clean_stop(service)
    (worker,) = _status(service)["workers"]
    assert (worker["alive"], worker["stopped"]) == (False, True)


def test_embedded_defaults_end_to_end(embedded_service: Service, tmp_path: Path) -> None:
    _run_and_check(embedded_service, tmp_path)
    _check_status(embedded_service)
    # the worker's log says which trial of which job ended how, not Celery's task ids
    worker_log = (embedded_service.log_dir / "worker.log").read_text()
    assert " trial 0 completed score " in worker_log, worker_log[-3000:]
    assert "succeeded in" not in worker_log, worker_log[-3000:]


@pytest.mark.integration
def test_postgres_and_redis_end_to_end(distributed_service: Service, tmp_path: Path) -> None:
    api = f"{distributed_service.base_url}/api/v1"
    assert httpx.get(f"{api}/jobs").status_code == 401
    token = distributed_service.create_key("e2e")
    _run_and_check(distributed_service, tmp_path, api_key=token)
    other = distributed_service.create_key("someone-else")
    listed = httpx.get(f"{api}/jobs", headers={"Authorization": f"Bearer {other}"}).json()
    assert listed["total"] == 0
    # compose runs the API as several uvicorn processes: all of them serve, none is left behind,
    # and /metrics counts the requests of all of them, whichever answers the scrape.
    assert api_processes(distributed_service) == compose_api_workers()
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(20):  # a connection each: spread over the processes
        assert httpx.get(f"{api}/limits", headers=headers).status_code == 200
    assert {_limits_count(distributed_service.base_url) for _ in range(6)} == {20.0}
    _check_status(distributed_service)


def _limits_count(base_url: str) -> float:
    """What one scrape of /metrics says of GET /api/v1/limits answered 200."""
    text = httpx.get(f"{base_url}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "hpsearch_http_requests_total" and sample.labels == {
                "method": "GET",
                "route": "/api/v1/limits",
                "status": "200",
            }:
                return sample.value
    return 0.0


def compose_api_workers() -> int:
    command = compose_command("api")
    return int(command[command.index("--workers") + 1])


def api_processes(service: Service) -> int:
    """The uvicorn worker processes under the API's main process (not its resource tracker)."""
    children = Path(f"/proc/{service.processes['api'].pid}/task")
    pids = {
        child for task in children.iterdir() for child in (task / "children").read_text().split()
    }
    cmdlines = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in pids]
    return sum(b"spawn_main" in cmdline for cmdline in cmdlines)
