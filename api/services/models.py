"""Stored models: find one by rank, download it, predict with it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from api.errors import ConflictError, InputValidationError, NotFoundError, quoted_id
from api.inference import Predictor, format_output, prepare_rows
from api.schemas import ModelRef, PredictRequest, PredictResponse
from api.services import transaction
from api.services.jobs import job_or_404
from api.uploads.rows import Column, columns_of, encode_rows
from db.repositories import artifacts, uploads
from db.settings import Settings
from search_spaces.datasets import UPLOAD_PREFIX


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


def _upload_columns(settings: Settings, owner: str, job_id: str) -> list[Column]:
    """The columns of the uploaded dataset the job trained on (rows sent as objects)."""

    def read(session: Session) -> list[Column]:
        job = job_or_404(session, job_id, owner)
        name = str((job.spec.get("dataset") or {}).get("name", ""))
        upload = None
        if name.startswith(UPLOAD_PREFIX):
            upload = uploads.get_upload(session, name.removeprefix(UPLOAD_PREFIX), owner)
        if upload is None or not upload.feature_names:
            raise InputValidationError(
                "rows",
                f"rows as objects need a job on an uploaded dataset (its column names); this "
                f"job's dataset is {name[:100]!r}: send each row as an array",
            )
        summary = upload.summary or {}
        return columns_of(
            upload.feature_names,
            summary.get("categorical_columns") or {},
            summary.get("imputed_medians") or {},
        )

    return transaction(settings, "read an upload's columns", read)


def predict(
    settings: Settings, predictor: Predictor, owner: str, job_id: str, request: PredictRequest
) -> PredictResponse:
    """Validate the rows against the model's signature and predict in the child process."""
    model = find_model(settings, owner, job_id, request.rank)
    signature = model.signature
    rows: Any = request.rows
    if rows and isinstance(rows[0], dict) and len(rows) <= settings.max_predict_rows:
        rows = encode_rows(rows, _upload_columns(settings, owner, job_id))
    x = prepare_rows(rows, signature.get("input_shape") or [], settings.max_predict_rows)

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
