"""HPSEARCH_LOG_FORMAT=json: the API (with uvicorn's own lines) and a worker (with Celery's) write
one JSON object per line: what a deployment's log collector reads."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.service import Service

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

#: printed, not logged (see README): TensorFlow's C++ runtime, before Python's logging exists;
#: Celery, the moment it shuts down.
NOT_LOGGED = (
    "I0000 ",
    "W0000 ",
    "E0000 ",
    "WARNING: All log messages before absl",
    "worker: Warm shutdown",
)


def _records(log: Path) -> list[dict]:
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(NOT_LOGGED)]
    assert lines, f"{log.name} is empty"
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"{log.name}: not a JSON line: {line!r}")
    return records


def test_the_api_and_a_worker_log_json_lines(tmp_path: Path) -> None:
    service = Service.for_urls(tmp_path, None, None)
    service.env["HPSEARCH_LOG_FORMAT"] = "json"
    try:
        service.run_once("migrate", ["hpsearch", "migrate"])
        service.start_api()
        service.start_worker()
        assert httpx.get(f"{service.base_url}/api/v1/jobs").status_code == 200
        deadline = time.monotonic() + 120
        while "ready" not in (service.log_dir / "worker.log").read_text():
            assert time.monotonic() < deadline, service.logs()
            time.sleep(0.5)
    finally:
        service.stop()
    api = _records(service.log_dir / "api.log")
    assert {"time", "level", "logger", "message"} <= set(api[0])
    loggers = {r["logger"] for r in api}
    assert "uvicorn.error" in loggers and "api.auth" in loggers, loggers  # theirs and ours
    worker = _records(service.log_dir / "worker.log")
    assert any("ready" in r["message"] for r in worker), worker
