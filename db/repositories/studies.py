"""A technique study's trials and their objective per epoch: what its result reads."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Epoch, Trial


def study_trials(session: Session, job_id: str) -> list[dict[str, Any]]:
    """Every trial of the job: number, variant and seed (its hyperparameters), status, score,
    fit seconds, best epoch; by number."""
    rows = session.execute(
        select(
            Trial.number,
            Trial.hyperparameters,
            Trial.status,
            Trial.score,
            Trial.fit_duration_s,
            Trial.best_epoch,
        )
        .where(Trial.job_id == job_id)
        .order_by(Trial.number)
    ).all()
    return [
        {
            "number": r.number,
            "variant": (r.hyperparameters or {}).get("variant"),
            "seed": (r.hyperparameters or {}).get("seed"),
            "status": r.status.value,
            "score": r.score,
            "fit_s": r.fit_duration_s,
            "best_epoch": r.best_epoch,
        }
        for r in rows
    ]


def objective_by_epoch(session: Session, job_id: str, metric: str) -> dict[int, list[float]]:
    """Trial number -> ``metric`` at each of its last execution's epochs, in order."""
    rows = session.execute(
        select(Trial.number, Epoch.execution, Epoch.epoch, Epoch.metrics)
        .join(Epoch, Epoch.trial_id == Trial.id)
        .where(Trial.job_id == job_id)
        .order_by(Trial.number, Epoch.execution, Epoch.epoch)
    ).all()
    found: dict[int, dict[int, list[float]]] = {}
    for number, execution, _, metrics in rows:
        value = (metrics or {}).get(metric)
        per_execution = found.setdefault(number, {})
        per_execution.setdefault(execution, []).append(value)
    return {n: runs[max(runs)] for n, runs in found.items()}
