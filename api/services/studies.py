"""A technique study's result, read from its trials (``studies.result``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from api.errors import ConflictError, quoted_id
from api.services import transaction
from api.services.jobs import job_or_404
from api.study_schemas import StudyResult
from db.models import Job
from db.repositories import studies as repository
from db.settings import Settings
from search_spaces.study_spec import StudySpec
from studies.curves import mean_curves
from studies.result import StudyTrial, study_result


def study_of(session: Session, job: Job) -> dict[str, Any] | None:
    """The job's study table so far (``studies.result.study_result`` with each variant's mean
    learning curve), or None for a search job."""
    stored = (job.spec or {}).get("study")
    if not stored:
        return None
    study = StudySpec.model_validate(stored)
    rows = repository.study_trials(session, job.id)
    trials = [
        StudyTrial(r["variant"], r["seed"], r["status"], r["score"], r["fit_s"], r["best_epoch"])
        for r in rows
        if r["variant"] is not None
    ]
    result = study_result(
        study.variants,
        study.baseline_name,
        study.seeds,
        study.confidence,
        job.objective,
        job.direction == "max",
        trials,
    )
    epochs = repository.objective_by_epoch(session, job.id, job.objective)
    curves = mean_curves({r["number"]: r["variant"] for r in rows}, epochs)
    for row in result["variants"]:
        row["curve"] = curves.get(row["name"], [])
    return result


def job_study(settings: Settings, owner: str, job_id: str) -> StudyResult:
    """The study's table so far (final once every trial ended); 409 for a search job."""

    def read(session: Session) -> StudyResult:
        found = study_of(session, job_or_404(session, job_id, owner))
        if found is None:
            raise ConflictError(f"job {quoted_id(job_id)} is a search, not a technique study")
        return StudyResult.model_validate(found)

    return transaction(settings, "read a technique study's result", read)
