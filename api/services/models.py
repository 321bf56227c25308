"""Stored models: find one by rank, download it, predict with it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from api.errors import ConflictError, NotFoundError, quoted_id
from api.inference import Predictor, format_output, prepare_rows
from api.schemas import ModelRef, PredictRequest, PredictResponse
from api.services import transaction
from api.services.jobs import job_or_404
from db.repositories import artifacts
from db.settings import Settings


@dataclass(frozen=True)
class StoredModel:
    """A model artifact picked by rank (content loaded separately, on demand)."""

    id: int
    job_id: str
    rank: int
    trial_number: int
    score: float | None
    sha256: str
    size_bytes: int
    signature: dict[str, Any]

    @property
    def filename(self) -> str:
        return f"{self.job_id}-rank{self.rank}.keras"


def find_model(settings: Settings, owner: str, job_id: str, rank: int) -> StoredModel:
    """The job's ``rank``-th best stored model. 404: no such job or rank; 409: none stored yet."""

    def find(session: Session) -> StoredModel:
        job = job_or_404(session, job_id, owner)
        artifact = artifacts.artifact_by_rank(session, job, rank)
        if artifact is None:
            if not job.status.is_final:
                raise ConflictError(
                    f"job {job_id} is {job.status.value} and has no stored model of rank {rank} yet"
                )
            raise NotFoundError(f"job {quoted_id(job_id)} has no stored model of rank {rank}")
        return StoredModel(
            id=artifact.id,
            job_id=job_id,
            rank=rank,
            trial_number=artifact.trial_number,
            score=artifact.score,
            sha256=artifact.sha256,
            size_bytes=artifact.size_bytes,
            signature=dict(artifact.signature or {}),
        )

    return transaction(settings, "find a stored model", find)


def model_content(settings: Settings, model: StoredModel) -> bytes:
    """The ``.keras`` bytes of a stored model."""
    return transaction(
        settings, "read a stored model", lambda s: artifacts.artifact_content(s, model.id)
    )


def predict(
    settings: Settings, predictor: Predictor, owner: str, job_id: str, request: PredictRequest
) -> PredictResponse:
    """Validate the rows against the model's signature and predict in the child process."""
    model = find_model(settings, owner, job_id, request.rank)
    signature = model.signature
    x = prepare_rows(request.rows, signature.get("input_shape") or [], settings.max_predict_rows)

    def load() -> bytes:
        content = model_content(settings, model)
        if hashlib.sha256(content).hexdigest() != model.sha256:
            raise ConflictError(f"model of trial {model.trial_number} fails its sha256 check")
        return content

    mean, std = predictor.predict(model.sha256, load, x, request.mc_samples)
    fields = format_output(
        str(signature.get("task", "regression")), mean, std, signature.get("class_labels")
    )
    return PredictResponse(
        **fields,
        model=ModelRef(trial_number=model.trial_number, rank=model.rank, sha256=model.sha256),
    )
