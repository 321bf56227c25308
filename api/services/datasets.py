"""Datasets: the built-in catalogue, and each owner's uploads (parse, store, read, delete)."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from api import quotas
from api.errors import ConflictError, InputValidationError, NotFoundError, quoted_id
from api.schemas import DatasetDetail, DatasetPage, DatasetPublic
from api.services import transaction
from db.models import UploadedDataset
from db.repositories import jobs, uploads
from db.settings import Settings
from search_spaces.datasets import (
    BUILTIN_DATASETS,
    UPLOAD_PREFIX,
    DatasetInfo,
    Task,
    keras_cache_dir,
)
from search_spaces.limits import MAX_NAME_LENGTH


def dataset_public(info: DatasetInfo, cache_dir: Path) -> DatasetPublic:
    """A built-in dataset as listed, with whether it loads without a download."""
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


def list_datasets(settings: Settings, owner: str, limit: int, offset: int) -> DatasetPage:
    """A page of the datasets a spec can name: the built-in catalogue (with whether each can
    load without a download), then ``owner``'s uploads, newest first."""
    cache_dir = keras_cache_dir()
    builtins = [dataset_public(info, cache_dir) for info in BUILTIN_DATASETS.values()]
    items = builtins[offset : offset + limit]
    upload_offset = max(0, offset - len(builtins))

    def read(session: Session) -> tuple[list[DatasetPublic], int]:
        rows, total = uploads.list_uploads(
            session, owner, limit=limit - len(items), offset=upload_offset
        )
        return [DatasetPublic(**_upload_fields(row)) for row in rows], total

    listed, total = transaction(settings, "list datasets", read)
    return DatasetPage(
        items=items + listed, total=len(builtins) + total, limit=limit, offset=offset
    )


def _upload_fields(row: UploadedDataset) -> dict[str, Any]:
    info = uploads.upload_as_info(row)
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
    row = uploads.get_upload(session, dataset_id.removeprefix(UPLOAD_PREFIX), owner, lock=lock)
    if row is None:
        raise NotFoundError(f"dataset {quoted_id(dataset_id)} not found")
    return row


def get_dataset(settings: Settings, owner: str, dataset_id: str) -> DatasetDetail:
    """A built-in by name, or one of ``owner``'s uploads by id (or ``upload:<id>``)."""
    if dataset_id in BUILTIN_DATASETS:
        public = dataset_public(BUILTIN_DATASETS[dataset_id], keras_cache_dir())
        return DatasetDetail(**public.model_dump())
    return transaction(
        settings,
        "read a dataset",
        lambda session: _upload_detail(_upload_or_404(session, dataset_id, owner)),
    )


def dataset_summary_with_stats(
    settings: Settings, owner: str, dataset_id: str
) -> dict[str, Any] | None:
    """The summary of one of ``owner``'s uploads (by id or ``upload:<id>``) with its feature
    statistics (``api.uploads.stats``): as stored, or, for an upload older than them, computed
    now from its stored arrays (and returned, not stored). None for a built-in (no summary);
    404 for an unknown upload, 409 if its stored arrays cannot be read."""
    from api.uploads.stats import STAT_KEYS, dataset_statistics

    if dataset_id in BUILTIN_DATASETS:
        return None

    def read(session: Session) -> tuple[dict[str, Any], list[Any] | None, Any, bytes | None]:
        row = _upload_or_404(session, dataset_id, owner)
        summary = dict(row.summary or {})
        stored = all(key in summary for key in STAT_KEYS)
        content = None if stored else uploads.upload_content(session, row.id)
        return summary, row.feature_names, row.class_labels, content

    # the arrays are read in the transaction, the statistics computed after it
    summary, names, labels, content = transaction(settings, "read a dataset's summary", read)
    if content is None:
        return summary
    try:
        with np.load(io.BytesIO(content), allow_pickle=False) as arrays:
            x, y = arrays["x"], arrays["y"]
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ConflictError(
            f"dataset {quoted_id(dataset_id)}: its stored arrays cannot be read ({exc})"
        ) from None
    return {**summary, **dataset_statistics(x, y, names, labels)}


def delete_dataset(settings: Settings, owner: str, dataset_id: str) -> None:
    """Delete an upload; 409 while a queued or running job trains on it (or for a built-in)."""
    if dataset_id in BUILTIN_DATASETS:
        raise ConflictError(f"{dataset_id!r} is a built-in dataset; it cannot be deleted")

    def delete(session: Session) -> None:
        row = _upload_or_404(session, dataset_id, owner, lock=True)
        ref = f"{UPLOAD_PREFIX}{row.id}"
        users = jobs.jobs_using_dataset(session, ref)
        if users:
            raise ConflictError(
                f"dataset {ref} is used by {len(users)} queued or running job(s): "
                f"{', '.join(users[:10])}; cancel them or wait for them to finish"
            )
        uploads.delete_upload(session, row.id)

    transaction(settings, "delete a dataset", delete)


def stored_name(name: str | None, filename: str | None) -> str:
    """The label an upload is stored under: ``name``, else the file name's last part with
    control characters dropped (a client's file name is never used as a path)."""
    if name:
        return name
    base = PureWindowsPath(PurePosixPath(filename or "").name).name
    base = "".join(ch for ch in base if ch.isprintable()).strip()[:MAX_NAME_LENGTH]
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

    def store(session: Session) -> DatasetDetail:
        quotas.check_new_upload(session, settings, owner, len(arrays))
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
        return _upload_detail(uploads.add_upload(session, row))

    return transaction(settings, "store an upload", store)
