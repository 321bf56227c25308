"""What the routes do: submit, list, read and cancel jobs; leaderboards; models; predictions.

Routes stay thin; these functions own the transactions (``session_scope``) and raise the
domain errors of ``api.errors``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from sqlalchemy.orm import Session

from api import quotas
from api.auth import Principal
from api.errors import BrokerUnavailableError, ConflictError, InputValidationError, NotFoundError
from api.inference import Predictor, format_output, prepare_rows
from api.queue import JobQueue
from api.schemas import (
    Account,
    DatasetDetail,
    DatasetPublic,
    JobPublic,
    JobSubmitted,
    ModelRef,
    Page,
    PredictRequest,
    PredictResponse,
    QuotaUse,
    TrialDetail,
    TrialPublic,
)
from db import owners
from db import repositories as repo
from db.engine import session_scope
from db.models import Job, JobStatus, ModelArtifact, TrialStatus, UploadedDataset
from db.settings import Settings
from search_spaces.advice import advise
from search_spaces.datasets import BUILTIN_DATASETS, UPLOAD_PREFIX, DatasetInfo, Task
from search_spaces.limits import MAX_NAME_LENGTH
from search_spaces.schema import JobSpec

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"


def _session(settings: Settings):  # type: ignore[no-untyped-def]
    return session_scope(settings.resolved_database_url())


JOB_ID = re.compile(r"[0-9a-f]{32}")


def _job_or_404(session: Session, job_id: str, owner: str) -> Job:
    # Ids are 32 hex digits: anything else cannot exist, and must not reach the database
    # (PostgreSQL rejects NUL bytes in text with an error of its own). Another owner's job
    # is "not found" too: its existence is not for this caller to learn.
    job = repo.get_job(session, job_id) if JOB_ID.fullmatch(job_id) else None
    if job is None or job.owner != owner:
        raise NotFoundError(f"job {job_id!r} not found")
    return job


# --- jobs -------------------------------------------------------------------------------------


def spec_warnings(spec: JobSpec) -> list[dict[str, Any]]:
    """The advice on a spec, as stored on the job: ``[{code, message, fields}]``."""
    return [a.model_dump(mode="json") for a in advise(spec)]


def validate_spec(settings: Settings, owner: str, body: Any) -> JobSpec:
    """The submitted JSON as a spec; an ``upload:<id>`` dataset (of ``owner``) is resolved from
    the database, so task- and shape-dependent rules apply to uploads as to built-ins. 422
    otherwise."""
    try:
        with _session(settings) as session:
            return JobSpec.model_validate(
                body, context={"datasets": repo.dataset_resolver(session, owner)}
            )
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from None


def submit_job(settings: Settings, queue: JobQueue, owner: str, spec: JobSpec) -> JobSubmitted:
    """Store the job (within ``owner``'s quotas: 429), then enqueue it; if the broker cannot
    take it, the row is removed (503)."""
    warnings = spec_warnings(spec)
    job = Job(
        owner=owner,
        name=spec.name,
        status=JobStatus.QUEUED,
        spec=spec.model_dump(mode="json"),
        warnings=warnings,
        algorithm=spec.search.algorithm,
        dataset=spec.dataset.name,
        objective=spec.objective,
        direction=spec.direction,
        max_trials=spec.search.max_trials,
    )
    with _session(settings) as session:
        quotas.check_new_job(session, settings, owner, spec.search.max_trials)
        if spec.dataset.info.source == "upload":
            # Under the upload's row lock, as DELETE /datasets takes it: a concurrent delete
            # either sees this job (409) or wins, and then this submission fails (422).
            upload_id = spec.dataset.name.removeprefix(UPLOAD_PREFIX)
            if repo.get_upload(session, upload_id, owner, lock=True) is None:
                raise InputValidationError(
                    "dataset.name", f"no uploaded dataset {spec.dataset.name!r}", None, "spec_rule"
                )
        job_id = repo.add_job(session, job).id
    try:
        queue.enqueue_job(job_id)
    except BrokerUnavailableError:
        with _session(settings) as session:
            repo.delete_job(session, job_id)
        raise
    return JobSubmitted.model_validate(
        {
            "id": job_id,
            "status": JobStatus.QUEUED,
            "warnings": warnings,
            "url": f"{API_PREFIX}/jobs/{job_id}",
        }
    )


def list_jobs(
    settings: Settings, owner: str, status: JobStatus | None, limit: int, offset: int
) -> Page[JobPublic]:
    """A page of ``owner``'s jobs, newest first."""
    with _session(settings) as session:
        rows, total = repo.list_jobs(
            session, owner=owner, status=status, limit=limit, offset=offset
        )
        items = [JobPublic.model_validate(job) for job in rows]
    return Page[JobPublic](items=items, total=total, limit=limit, offset=offset)


def get_job(settings: Settings, owner: str, job_id: str) -> JobPublic:
    with _session(settings) as session:
        return JobPublic.model_validate(_job_or_404(session, job_id, owner))


def delete_job(settings: Settings, owner: str, job_id: str) -> None:
    """Delete a final job with its trials, epochs and models; 409 while it is queued or running."""
    with _session(settings) as session:
        job = _job_or_404(session, job_id, owner)
        if not job.status.is_final:
            raise ConflictError(
                f"job {job_id} is {job.status.value}; cancel it first, then delete it"
            )
        if not repo.delete_final_job(session, job_id):
            raise ConflictError(
                f"job {job_id} still has a trial stopping; try again in a few seconds"
            )


def cancel_job(settings: Settings, queue: JobQueue, owner: str, job_id: str) -> JobPublic:
    """Queued: cancelled now. Running: flagged (the worker stops at its next epoch). Final: 409.

    The Celery task is revoked too, best effort (the DB flag is what the worker obeys).
    """
    with _session(settings) as session:
        job = _job_or_404(session, job_id, owner)
        if job.status.is_final:
            raise ConflictError(
                f"job {job_id} is already {job.status.value}; it cannot be cancelled"
            )
        if not repo.cancel_queued_job(session, job_id) and not repo.request_job_cancel(
            session, job_id
        ):
            # it finished between the read and the update
            session.refresh(job)
            raise ConflictError(
                f"job {job_id} is already {job.status.value}; it cannot be cancelled"
            )
    if not queue.revoke(job_id):
        log.info("could not revoke the task of job %s; the worker will see the DB flag", job_id)
    return get_job(settings, owner, job_id)


# --- trials -----------------------------------------------------------------------------------


def list_trials(
    settings: Settings,
    owner: str,
    job_id: str,
    *,
    sort: str,
    order: repo.Order | None,
    status: TrialStatus | None,
    limit: int,
    offset: int,
) -> Page[TrialPublic]:
    """A page of the job's leaderboard."""
    with _session(settings) as session:
        job = _job_or_404(session, job_id, owner)
        rows, total = repo.list_trials(
            session, job, sort=sort, order=order, status=status, limit=limit, offset=offset
        )
        items = [TrialPublic.model_validate(t) for t in rows]
    return Page[TrialPublic](items=items, total=total, limit=limit, offset=offset)


def get_trial(settings: Settings, owner: str, job_id: str, number: int) -> TrialDetail:
    """One trial with its epochs."""
    with _session(settings) as session:
        _job_or_404(session, job_id, owner)
        trial = repo.get_trial(session, job_id, number, with_epochs=True)
        if trial is None:
            raise NotFoundError(f"trial {number} of job {job_id} not found")
        return TrialDetail.model_validate(trial)


# --- models -----------------------------------------------------------------------------------


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
    with _session(settings) as session:
        job = _job_or_404(session, job_id, owner)
        artifact: ModelArtifact | None = repo.artifact_by_rank(session, job, rank)
        if artifact is None:
            if not job.status.is_final:
                raise ConflictError(
                    f"job {job_id} is {job.status.value} and has no stored model of rank {rank} yet"
                )
            raise NotFoundError(f"job {job_id} has no stored model of rank {rank}")
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


def model_content(settings: Settings, model: StoredModel) -> bytes:
    """The ``.keras`` bytes of a stored model."""
    with _session(settings) as session:
        return repo.artifact_content(session, model.id)


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


# --- catalogue and health -----------------------------------------------------------------------


def keras_datasets_dir() -> Path:
    """Where Keras's loaders cache their downloads."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets"


def dataset_public(info: DatasetInfo, cache_dir: Path) -> DatasetPublic:
    offline = info.source == "sklearn" or all((cache_dir / f).exists() for f in info.cache_files)
    return DatasetPublic(
        ref=info.name,
        name=info.name,
        source=info.source,
        task=str(info.task),
        input_shape=list(info.input_shape),
        n_features=info.n_features,
        n_classes=info.n_classes,
        rows=info.rows,
        description=info.description,
        available_offline=offline,
    )


def list_datasets(settings: Settings, owner: str, limit: int, offset: int) -> Page[DatasetPublic]:
    """A page of the datasets a spec can name: the built-in catalogue (with whether each can
    load without a download), then ``owner``'s uploads, newest first."""
    cache_dir = keras_datasets_dir()
    builtins = [dataset_public(info, cache_dir) for info in BUILTIN_DATASETS.values()]
    items = builtins[offset : offset + limit]
    upload_offset = max(0, offset - len(builtins))
    with _session(settings) as session:
        rows, uploads = repo.list_uploads(
            session, owner, limit=limit - len(items), offset=upload_offset
        )
        items += [DatasetPublic(**_upload_fields(row)) for row in rows]
    return Page[DatasetPublic](
        items=items, total=len(builtins) + uploads, limit=limit, offset=offset
    )


def _upload_fields(row: UploadedDataset) -> dict[str, Any]:
    info = repo.upload_as_info(row)
    return {
        "kind": "upload",
        "ref": info.name,
        "id": row.id,
        "owner": row.owner,
        "name": row.name,
        "source": "upload",
        "task": row.task,
        "input_shape": list(row.input_shape),
        "n_features": row.n_features,
        "n_classes": row.n_classes,
        "rows": row.rows,
        "description": f"uploaded {row.format} file",
        "available_offline": True,
    }


def _upload_detail(row: UploadedDataset) -> DatasetDetail:
    return DatasetDetail(
        **_upload_fields(row),
        format=row.format,
        size_bytes=row.size_bytes,
        stored_bytes=row.stored_bytes,
        sha256=row.sha256,
        class_labels=row.class_labels,
        feature_names=row.feature_names,
        summary=row.summary,
        created_at=row.created_at,
    )


def _upload_or_404(
    session: Session, dataset_id: str, owner: str, lock: bool = False
) -> UploadedDataset:
    row = repo.get_upload(session, dataset_id.removeprefix(UPLOAD_PREFIX), owner, lock=lock)
    if row is None:
        raise NotFoundError(f"dataset {dataset_id!r} not found")
    return row


def get_dataset(settings: Settings, owner: str, dataset_id: str) -> DatasetDetail:
    """A built-in by name, or one of ``owner``'s uploads by id (or ``upload:<id>``)."""
    if dataset_id in BUILTIN_DATASETS:
        public = dataset_public(BUILTIN_DATASETS[dataset_id], keras_datasets_dir())
        return DatasetDetail(**public.model_dump())
    with _session(settings) as session:
        return _upload_detail(_upload_or_404(session, dataset_id, owner))


def delete_dataset(settings: Settings, owner: str, dataset_id: str) -> None:
    """Delete an upload; 409 while a queued or running job trains on it (or for a built-in)."""
    if dataset_id in BUILTIN_DATASETS:
        raise ConflictError(f"{dataset_id!r} is a built-in dataset; it cannot be deleted")
    with _session(settings) as session:
        row = _upload_or_404(session, dataset_id, owner, lock=True)
        ref = f"{UPLOAD_PREFIX}{row.id}"
        users = repo.active_jobs_using(session, ref)
        if users:
            raise ConflictError(
                f"dataset {ref} is used by {len(users)} queued or running job(s): "
                f"{', '.join(users[:10])}; cancel them or wait for them to finish"
            )
        repo.delete_upload(session, row.id)


def stored_name(name: str | None, filename: str | None) -> str:
    """The label an upload is stored under: ``name``, else the file name's last part with
    control characters dropped (a client's file name is never used as a path)."""
    if name:
        return name
    base = PureWindowsPath(PurePosixPath(filename or "").name).name
    base = "".join(ch for ch in base if ch.isprintable())[:MAX_NAME_LENGTH]
    return base if base not in ("", ".", "..") else "dataset"


def upload_dataset(
    settings: Settings,
    owner: str,
    content: bytes,
    *,
    filename: str | None,
    name: str | None,
    fmt: str | None,
    target: str | None,
    task: Task | None,
) -> DatasetDetail:
    """Parse, normalise and store an uploaded file (422 naming what is wrong; 429 over the
    owner's storage quota)."""
    from api.uploads import Limits, UploadError, format_from_filename, parse_upload

    fmt = fmt or format_from_filename(filename)
    if fmt is None:
        raise InputValidationError(
            "format",
            f"cannot tell the format of {filename!r}; name the file .csv, .npz or .parquet, "
            "or set the format field",
        )
    limits = Limits(settings.max_upload_rows, settings.max_upload_columns)
    try:
        parsed = parse_upload(content, fmt, target, task, limits)
    except UploadError as exc:
        raise InputValidationError(exc.field, exc.message, exc.limit, exc.kind) from None
    arrays = parsed.to_npz()
    row = UploadedDataset(
        owner=owner,
        name=stored_name(name, filename),
        format=fmt,
        task=str(parsed.task),
        input_shape=parsed.input_shape,
        n_features=len(parsed.feature_names),
        n_classes=parsed.n_classes,
        class_labels=parsed.class_labels,
        feature_names=parsed.feature_names,
        rows=len(parsed.y),
        summary=parsed.summary,
        size_bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        stored_bytes=len(arrays),
        content=arrays,
    )
    with _session(settings) as session:
        quotas.check_new_upload(session, settings, owner, len(arrays))
        session.add(row)
        session.flush()
        return _upload_detail(row)


def account(settings: Settings, principal: Principal) -> Account:
    """The caller's owner, key and quota usage."""
    with _session(settings) as session:
        limits = quotas.Quotas.of(owners.get_owner(session, principal.owner), settings)
        used = owners.usage(session, principal.owner)
    return Account(
        owner=principal.owner,
        auth_mode=settings.auth_mode,
        key_id=principal.key_id,
        active_jobs=QuotaUse(limit=limits.active_jobs, used=used.active_jobs),
        pending_trials=QuotaUse(limit=limits.pending_trials, used=used.pending_trials),
        stored_bytes=QuotaUse(limit=limits.stored_bytes, used=used.stored_bytes),
    )


def check_database(settings: Settings) -> tuple[bool, str]:
    try:
        with _session(settings) as session:
            repo.ping(session)
    except Exception as exc:
        log.warning("database check failed: %r", exc)
        return False, f"unreachable ({type(exc).__name__})"
    return True, "ok"


def service_version() -> str:
    """The installed package version (``0.0.0`` when run from a bare checkout)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hpsearch")
    except PackageNotFoundError:
        return "0.0.0"
