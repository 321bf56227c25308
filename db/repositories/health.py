"""A job's judged trials: what the training-health summary reads."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Trial


def judged_trials(session: Session, job_id: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``(hyperparameters, health)`` of the job's trials that have verdicts, by number."""
    rows = session.execute(
        select(Trial.hyperparameters, Trial.health)
        .where(Trial.job_id == job_id, Trial.health.is_not(None))
        .order_by(Trial.number)
    ).all()
    # a JSON null (written before the column stored None as SQL NULL) is no verdict either
    return [(dict(params or {}), dict(health)) for params, health in rows if health]
