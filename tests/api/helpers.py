"""Rows written straight into the database, as a worker would, for the API tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from db.engine import session_scope
from db.models import Epoch, Job, JobStatus, ModelArtifact, Trial, TrialStatus

SPEC: dict[str, Any] = {
    "name": "api-test",
    "dataset": {"name": "iris"},
    "model": {"depth": {"type": "int", "min": 1, "max": 2}, "units": 8},
    "training": {"epochs": 2},
    "search": {"max_trials": 3, "seed": 1},
}


def insert_job(**overrides: Any) -> str:
    """A job row (queued iris search by default); returns its id."""
    values: dict[str, Any] = {
        "name": "inserted",
        "status": JobStatus.QUEUED,
        "spec": SPEC,
        "warnings": [],
        "algorithm": "random",
        "dataset": "iris",
        "objective": "val_accuracy",
        "direction": "max",
        "max_trials": 4,
    }
    values.update(overrides)
    with session_scope() as session:
        job = Job(**values)
        session.add(job)
        session.flush()
        return job.id


def insert_trial(job_id: str, number: int, **overrides: Any) -> int:
    """A trial row with ``epochs`` epoch rows if given; returns its id."""
    epochs = overrides.pop("epochs", 0)
    start = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(minutes=number)
    values: dict[str, Any] = {
        "job_id": job_id,
        "number": number,
        "status": TrialStatus.COMPLETED,
        "hyperparameters": {"depth": 1 + number % 2},
        "score": 0.5,
        "epochs_run": epochs,
        "started_at": start,
        "duration_s": 1.0 + number,
    }
    values.update(overrides)
    with session_scope() as session:
        trial = Trial(**values)
        session.add(trial)
        session.flush()
        for e in range(epochs):
            session.add(
                Epoch(
                    trial_id=trial.id,
                    execution=0,
                    epoch=e,
                    metrics={"loss": 1.0 / (e + 1), "val_accuracy": 0.5 + e / 10},
                    learning_rate=1e-3,
                    duration_s=0.1,
                )
            )
        return trial.id


def insert_artifact(
    job_id: str, trial_number: int, content: bytes, signature: dict[str, Any], **overrides: Any
) -> None:
    import hashlib

    values: dict[str, Any] = {
        "job_id": job_id,
        "trial_number": trial_number,
        "rank": 1,
        "score": signature.get("score"),
        "size_bytes": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "signature": signature,
        "content": content,
    }
    values.update(overrides)
    with session_scope() as session:
        session.add(ModelArtifact(**values))


def job_count() -> int:
    from sqlalchemy import func, select

    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(Job)) or 0
