"""Real API and worker processes on PostgreSQL + Redis, with fast leases, for the fault tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy import select

from db.engine import session_scope
from db.models import Job, Trial
from tests.e2e.service import Service

T = TypeVar("T")

#: heartbeat every second, a lease is stale after 4 s, the reaper looks every second.
FAST_LEASES = {
    "HPSEARCH_HEARTBEAT_INTERVAL_S": "1",
    "HPSEARCH_STALE_AFTER_S": "4",
    "HPSEARCH_REAPER_INTERVAL_S": "1",
}


def cluster(tmp_path: Path, database_url: str, broker_url: str, **env: str) -> Service:
    """A service (nothing started) on these URLs with fast leases and extra settings."""
    service = Service.for_urls(tmp_path, database_url, broker_url)
    service.env.update(FAST_LEASES)
    service.env.update(env)
    return service


def digits_spec(
    max_trials: int = 4, epochs: int = 6, algorithm: str = "random", **search: Any
) -> dict[str, Any]:
    """Tiny nets on 200 digits rows, batch 8 (~0.05 s an epoch after a trial's ~0.3 s fixed
    cost): a test that must hit a trial mid-way gives it tens of epochs (a cancel or a kill lands
    a few epochs after the trial is seen training), and a whole job takes seconds."""
    return {
        "dataset": {"name": "digits", "max_rows": 200, "split_seed": 1},
        "model": {
            "depth": {"type": "int", "min": 1, "max": 2},
            "units": {"type": "choice", "values": [8, 16]},
        },
        "optimizer": {"learning_rate": {"type": "choice", "values": [0.01, 0.003]}},
        "training": {"epochs": epochs, "batch_size": 8, "early_stopping": {"enabled": False}},
        "search": {"algorithm": algorithm, "max_trials": max_trials, "seed": 3, **search},
    }


def submit(service: Service, spec: dict[str, Any]) -> str:
    response = httpx.post(f"{service.base_url}/api/v1/jobs", json=spec, timeout=30)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def wait_for(
    what: str, check: Callable[[], T], service: Service, timeout: float = 90, every: float = 0.1
) -> T:
    """Poll ``check`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n{service.logs()}")
        time.sleep(every)


def job(job_id: str) -> Job:
    with session_scope() as session:
        return session.get_one(Job, job_id)


def trials(job_id: str) -> list[Trial]:
    with session_scope() as session:
        return list(
            session.scalars(select(Trial).where(Trial.job_id == job_id).order_by(Trial.number))
        )


def wait_final(job_id: str, service: Service, timeout: float = 120) -> Job:
    return wait_for(
        f"job {job_id} to end",
        lambda: (j := job(job_id)).status.is_final and j,
        service,
        timeout,
        every=0.5,
    )


def training_trial(job_id: str, min_epochs: int = 1) -> Trial | None:
    """A trial of the job that is running and has trained at least ``min_epochs`` epochs."""
    for t in trials(job_id):
        if t.status == "running" and t.epochs_run >= min_epochs and t.worker:
            return t
    return None


def pool_pid(trial: Trial) -> int:
    """The pool process training ``trial`` (its ``worker`` is ``host:main_pid:child_pid``)."""
    return int(str(trial.worker).rsplit(":", 1)[1])


def main_pid(trial: Trial) -> int:
    return int(str(trial.worker).split(":")[1])
