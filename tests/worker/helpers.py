"""Helpers for the worker tests: tiny specs, job rows, reading results back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import undefer

from db.engine import session_scope
from db.models import Epoch, Job, ModelArtifact, Trial
from worker.specs import parse_spec


def tiny_spec(**search: Any) -> dict[str, Any]:
    """Digits, 200 rows, small nets, 2 epochs: a search that takes seconds."""
    spec: dict[str, Any] = {
        "dataset": {"name": "digits", "max_rows": 200, "split_seed": 1},
        "model": {
            "depth": {"type": "int", "min": 1, "max": 2},
            "units": {"type": "choice", "values": [8, 16]},
        },
        "optimizer": {"learning_rate": {"type": "choice", "values": [0.01, 0.003]}},
        "training": {"epochs": 2, "batch_size": 32},
        "search": {"algorithm": "random", "max_trials": 3, "seed": 3, **search},
    }
    return spec


def create_job(spec: dict[str, Any], **fields: Any) -> str:
    """Insert a queued job for ``spec`` the way the API does."""
    parsed = parse_spec(spec)  # resolves an uploaded dataset from the database
    with session_scope() as session:
        job = Job(
            spec=parsed.model_dump(mode="json"),
            algorithm=parsed.search.algorithm,
            dataset=parsed.dataset.name,
            objective=parsed.objective,
            direction=parsed.direction,
            max_trials=parsed.trial_budget,
            **fields,
        )
        session.add(job)
        session.flush()
        return job.id


def get_job(job_id: str) -> Job:
    """The job row with every column loaded (the oracle state too, usually deferred)."""
    with session_scope() as session:
        return session.get_one(Job, job_id, options=[undefer(Job.oracle_state)])


def get_trials(job_id: str) -> list[Trial]:
    with session_scope() as session:
        return list(
            session.scalars(select(Trial).where(Trial.job_id == job_id).order_by(Trial.number))
        )


def get_epochs(job_id: str) -> list[Epoch]:
    with session_scope() as session:
        return list(
            session.scalars(
                select(Epoch)
                .join(Trial)
                .where(Trial.job_id == job_id)
                .order_by(Trial.number, Epoch.execution, Epoch.epoch)
            )
        )


def get_artifacts(job_id: str) -> list[ModelArtifact]:
    with session_scope() as session:
        return list(
            session.scalars(
                select(ModelArtifact)
                .where(ModelArtifact.job_id == job_id)
                .order_by(ModelArtifact.rank)
            )
        )


def drive(job_id: str, worker: str = "test-worker") -> list[int]:
    """Run a job in this process, as the queue would: dispatch it, then run every trial sent,
    first in first out, until nothing is left to send. Returns the trial ids in run order."""
    from collections import deque

    from worker.attempt import attempt_trial
    from worker.dispatcher import dispatch

    queue = deque(dispatch(job_id))
    ran: list[int] = []
    while queue:
        trial_id = queue.popleft()
        ran.append(trial_id)
        queue.extend(attempt_trial(trial_id, worker))
    return ran


def store_upload(content: bytes, fmt: str, target: str | None = None, task: Any = None) -> str:
    """Upload a file through the API's service (parse, normalise, store); returns its
    ``upload:<id>``."""
    from api.services.datasets import upload_dataset
    from db.models import OPEN_MODE_OWNER
    from db.settings import get_settings

    detail = upload_dataset(
        get_settings(),
        OPEN_MODE_OWNER,
        content,
        filename=f"test.{fmt}",
        name=None,
        fmt=fmt,
        target=target,
        task=task,
    )
    return detail.ref
