"""Uploaded datasets: their metadata rows and their normalised content."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, defer

from db.engine import session_scope
from db.models import UploadedDataset
from db.transient import retried
from db.values import is_id
from search_spaces.datasets import UPLOAD_PREFIX, DatasetInfo, upload_info


def get_upload(
    session: Session, upload_id: str, owner: str | None, lock: bool = False
) -> UploadedDataset | None:
    """``owner``'s upload's metadata row (its content deferred); ``None`` for a malformed id or
    another owner's upload. ``owner=None``: any owner's (the workers, whose jobs' specs the API
    checked against their owner at submission).

    ``lock``: hold its row lock (``FOR UPDATE``) until the transaction ends, so that deleting
    an upload and submitting a job on it are serialised.
    """
    if not is_id(upload_id):
        return None
    row = session.get(
        UploadedDataset,
        upload_id,
        options=[defer(UploadedDataset.content)],
        with_for_update=lock,
    )
    return row if row is not None and owner in (None, row.owner) else None


def add_upload(session: Session, row: UploadedDataset) -> UploadedDataset:
    """Insert an upload and flush, so its id and defaults are set."""
    session.add(row)
    session.flush()
    return row


def list_uploads(
    session: Session, owner: str, limit: int, offset: int
) -> tuple[Sequence[UploadedDataset], int]:
    """A page of ``owner``'s uploads, newest first, without their content, and their total."""
    where = UploadedDataset.owner == owner
    total = session.scalar(select(func.count()).select_from(UploadedDataset).where(where)) or 0
    rows = session.scalars(
        select(UploadedDataset)
        .where(where)
        .options(defer(UploadedDataset.content))
        .order_by(UploadedDataset.created_at.desc(), UploadedDataset.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return rows, total


def upload_content(session: Session, upload_id: str) -> bytes | None:
    """The normalised arrays (``.npz``) of an upload."""
    return session.scalar(select(UploadedDataset.content).where(UploadedDataset.id == upload_id))


@dataclass(frozen=True)
class UploadArrays:
    """What a worker trains on: the normalised arrays (``.npz``) and their labels."""

    content: bytes
    name: str
    class_labels: list[Any] | None
    feature_names: list[Any] | None


@retried("read an uploaded dataset")
def load_upload(upload_id: str) -> UploadArrays | None:
    """An upload's arrays, whoever owns it (a worker trains a job the API checked); None if it
    is gone."""
    with session_scope() as session:
        row = get_upload(session, upload_id, None)
        content = upload_content(session, upload_id) if row is not None else None
        if row is None or content is None:
            return None
        return UploadArrays(content, row.name, row.class_labels, row.feature_names)


def upload_as_info(row: UploadedDataset) -> DatasetInfo:
    """The upload as a spec sees a dataset."""
    return upload_info(row.id, row.task, list(row.input_shape), row.n_classes, row.rows, row.name)


def dataset_resolver(session: Session, owner: str | None) -> Callable[[str], DatasetInfo | None]:
    """``name -> DatasetInfo`` for ``owner``'s ``upload:<id>`` names (any owner's for None): the
    spec's validation context."""

    def resolve(name: str) -> DatasetInfo | None:
        row = get_upload(session, name.removeprefix(UPLOAD_PREFIX), owner)
        return None if row is None else upload_as_info(row)

    return resolve


def delete_upload(session: Session, upload_id: str) -> None:
    """Remove an upload."""
    session.execute(delete(UploadedDataset).where(UploadedDataset.id == upload_id))
