"""The OpenAPI document is the contract: a client generated from the document a running service
serves (openapi-python-client, without a warning) drives a whole job alone, in the API keys mode:
submit, poll, leaderboard, a trial's epochs, the trials as CSV, model download, predict, and a
refused spec read as the service's error body."""

from __future__ import annotations

import csv
import importlib
import io
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.e2e.service import Service, start_service

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

SPEC: dict[str, Any] = {
    "name": "generated-client",
    "dataset": {"name": "digits", "max_rows": 200, "split_seed": 2},
    "model": {
        "depth": {"type": "int", "min": 1, "max": 2},
        "units": 8,
        "activation": {"type": "choice", "values": ["relu", "selu"]},
        "dropout": {"type": "fixed", "value": 0.1},
    },
    "optimizer": {"learning_rate": {"type": "float", "min": 1e-3, "max": 1e-2, "sampling": "log"}},
    "training": {"epochs": 2, "batch_size": 32},
    "search": {"algorithm": "random", "max_trials": 2, "seed": 5},
}


def generate_client(document_url: str, out: Path) -> tuple[ModuleType, str]:
    """Generate ``hpsearch_client`` into ``out`` from the served document; its import and what
    the generator printed."""
    document = out / "openapi.json"
    document.write_bytes(httpx.get(document_url, timeout=30).content)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [str(bin_dir / "openapi-python-client"), "generate", "--path", str(document)]
    run = subprocess.run(
        [*command, "--meta", "none", "--output-path", str(out / "hpsearch_client")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    printed = (run.stdout + run.stderr).strip()
    assert run.returncode == 0, printed
    sys.path.insert(0, str(out))
    return importlib.import_module("hpsearch_client"), printed


@pytest.fixture
def keyed_service(tmp_path: Path) -> Iterator[Service]:
    service = start_service(tmp_path, database_url=None, broker_url=None, auth_mode="keys")
    yield service
    service.stop()


@pytest.fixture
def generated(keyed_service: Service, tmp_path: Path) -> Iterator[ModuleType]:
    module, printed = generate_client(f"{keyed_service.base_url}/openapi.json", tmp_path)
    # Nothing dropped, nothing guessed: the generator names what it could not use.
    assert printed.splitlines() == [f"Generating {tmp_path / 'hpsearch_client'}"], printed
    yield module
    sys.path.remove(str(tmp_path))
    for name in [n for n in sys.modules if n.split(".")[0] == "hpsearch_client"]:
        del sys.modules[name]


def _operation(tag: str, name: str) -> Any:
    """The generated module of one operation (``.sync``, ``.sync_detailed``)."""
    return importlib.import_module(f"hpsearch_client.api.{tag}.{name}")


def test_a_generated_client_drives_a_whole_job(keyed_service: Service, generated: Any) -> None:
    models = importlib.import_module("hpsearch_client.models")
    submit_job, get_job = _operation("jobs", "submit_job"), _operation("jobs", "get_job")
    list_trials, get_trial = _operation("trials", "list_trials"), _operation("trials", "get_trial")
    download_model, predict = (
        _operation("models", "download_model"),
        _operation("models", "predict"),
    )
    client = generated.AuthenticatedClient(
        base_url=keyed_service.base_url, token=keyed_service.create_key("client"), timeout=60
    )
    refused = submit_job.sync_detailed(
        client=client, body=models.JobSpec.from_dict({**SPEC, "search": {"max_trials": 0}})
    )
    assert refused.status_code == 422
    assert refused.parsed.error == "validation_error"
    assert [p.field for p in refused.parsed.detail] == ["search.max_trials"]

    submitted = submit_job.sync(client=client, body=models.JobSpec.from_dict(SPEC))
    assert isinstance(submitted, models.JobSubmitted), submitted
    deadline = time.monotonic() + 400
    while (job := get_job.sync(job_id=submitted.id, client=client)).status not in (
        models.JobStatus.SUCCEEDED,
        models.JobStatus.FAILED,
    ):
        assert time.monotonic() < deadline, f"job still {job.status}:\n{keyed_service.logs()}"
        time.sleep(1)
    assert job.status is models.JobStatus.SUCCEEDED, keyed_service.logs()

    board = list_trials.sync(job_id=job.id, client=client)
    assert board.total == 2 and board.items[0].number == job.best_trial_number
    best = get_trial.sync(job_id=job.id, number=board.items[0].number, client=client)
    assert len(best.epochs) == best.epochs_run >= 1
    assert "val_accuracy" in best.epochs[0].metrics.additional_properties

    export_trials_csv = _operation("trials", "export_trials_csv")
    table = list(csv.DictReader(io.StringIO(export_trials_csv.sync(job_id=job.id, client=client))))
    assert [row["number"] for row in table] == ["0", "1"]
    assert {"activation", "learning_rate", "metric:val_accuracy"} <= set(table[0])

    download = download_model.sync_detailed(job_id=job.id, client=client)
    assert download.status_code == 200
    assert "model.weights.h5" in zipfile.ZipFile(BytesIO(download.content)).namelist()

    rows = [[float(i % 16) for i in range(64)], [0.0] * 64]
    predicted = predict.sync(job_id=job.id, client=client, body=models.PredictRequest(rows=rows))
    assert isinstance(predicted, models.PredictResponse), predicted
    assert len(predicted.predictions) == 2
    assert all(p in range(10) for p in predicted.predictions)
