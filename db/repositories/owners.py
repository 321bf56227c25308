"""Owners, their API keys and what they use (the quotas' inputs).

A key is ``hps_<id>_<secret>``: ``id`` finds the row, only ``sha256(secret)`` is stored, and the
comparison is constant-time. Secrets are 256 random bits, so a fast hash is the right tool
(a slow password hash only helps against guessable secrets).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.models import (
    ApiKey,
    Job,
    JobStatus,
    ModelArtifact,
    Owner,
    TrialCheckpoint,
    UploadedDataset,
)
from db.values import as_utc, utcnow

#: owner names: what a key names, shown in lists and logs.
OWNER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
KEY_PATTERN = re.compile(r"hps_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)


class InvalidOwnerName(ValueError):
    """An owner name outside ``OWNER_NAME``."""


def check_owner_name(name: str) -> str:
    """``name`` if it is a valid owner name; ``InvalidOwnerName`` otherwise."""
    if not OWNER_NAME.fullmatch(name):
        raise InvalidOwnerName(
            f"{name!r} is not a valid owner name: 1-64 characters, letters, digits and _ . @ -, "
            "starting with a letter or digit"
        )
    return name


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def ensure_owner(session: Session, name: str) -> None:
    """Create the owner row if it does not exist (concurrent callers are fine)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(Owner)
        .values(name=name, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["name"])
    )


def lock_owner(session: Session, name: str) -> Owner:
    """The owner's row, locked until the transaction ends (created if missing).

    Quota checks run under it, so two concurrent submissions of one owner cannot both pass a
    limit only one of them fits under. On SQLite the insert takes the database's writer lock,
    which serialises the same way; call this first in the transaction.
    """
    ensure_owner(session, name)
    return session.scalars(select(Owner).where(Owner.name == name).with_for_update()).one()


def get_owner(session: Session, name: str) -> Owner | None:
    """The owner's row (its quota overrides), or None if it never existed."""
    return session.get(Owner, name)


# --- API keys ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewKey:
    """A key just created: ``token`` is shown once and never stored."""

    id: str
    owner: str
    token: str


def create_key(session: Session, owner: str, expires_at: datetime | None = None) -> NewKey:
    """A new key for ``owner`` (created if needed), valid until ``expires_at`` (None: ever)."""
    check_owner_name(owner)
    ensure_owner(session, owner)
    key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    session.add(
        ApiKey(id=key_id, owner=owner, secret_sha256=_digest(secret), expires_at=expires_at)
    )
    session.flush()
    return NewKey(id=key_id, owner=owner, token=f"hps_{key_id}_{secret}")


#: ``last_used_at`` is written at most once per this many seconds per key (not once a request).
LAST_USED_RESOLUTION_S = 60


@dataclass(frozen=True)
class KeyCheck:
    """What a token stands for: the live key (``key_id``, ``owner`` and the owner's own rate
    limit, if any), or why it is refused (``refused``)."""

    key_id: str | None = None
    owner: str | None = None
    requests_per_minute: int | None = None
    refused: str | None = None


def verify_key(session: Session, token: str) -> KeyCheck:
    """Check ``token``: malformed, unknown, wrong secret, revoked or expired keys are refused.
    A live key's ``last_used_at`` is brought up to date (to ``LAST_USED_RESOLUTION_S``)."""
    match = KEY_PATTERN.fullmatch(token)
    if match is None:
        return KeyCheck(refused="invalid or revoked API key")
    key = session.get(ApiKey, match[1])
    if key is None or key.revoked_at is not None:
        return KeyCheck(refused="invalid or revoked API key")
    if not hmac.compare_digest(key.secret_sha256, _digest(match[2])):
        return KeyCheck(refused="invalid or revoked API key")
    now = utcnow()
    expires = as_utc(key.expires_at)
    if expires is not None and expires <= now:
        return KeyCheck(refused=f"API key expired at {expires.isoformat(timespec='seconds')}")
    stale = now - timedelta(seconds=LAST_USED_RESOLUTION_S)
    session.execute(
        update(ApiKey)
        .where(
            ApiKey.id == key.id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < stale),
        )
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    rate = session.scalar(select(Owner.requests_per_minute).where(Owner.name == key.owner))
    return KeyCheck(key_id=key.id, owner=key.owner, requests_per_minute=rate)


def list_keys(session: Session, owner: str | None = None) -> list[ApiKey]:
    """Keys, oldest first (only ``owner``'s if given)."""
    query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)
    if owner is not None:
        query = query.where(ApiKey.owner == owner)
    return list(session.scalars(query))


def revoke_key(session: Session, key_id: str) -> bool:
    """Revoke a live key; False if there is no such live key."""
    result = session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


# --- usage -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """What an owner uses now, in the units of the quotas."""

    active_jobs: int
    pending_trials: int
    stored_bytes: int


def usage(session: Session, owner: str) -> Usage:
    """Queued/running jobs, trials they still have to run, and bytes stored for ``owner``."""
    active = [Job.owner == owner, Job.status.in_(ACTIVE_STATUSES)]
    active_jobs = session.scalar(select(func.count()).select_from(Job).where(*active)) or 0
    remaining = Job.max_trials - Job.trials_done
    pending = session.scalar(select(func.coalesce(func.sum(remaining), 0)).where(*active)) or 0
    uploads = session.scalar(
        select(func.coalesce(func.sum(UploadedDataset.stored_bytes), 0)).where(
            UploadedDataset.owner == owner
        )
    )
    models = session.scalar(
        select(func.coalesce(func.sum(ModelArtifact.size_bytes), 0))
        .join(Job, Job.id == ModelArtifact.job_id)
        .where(Job.owner == owner)
    )
    checkpoints = session.scalar(
        select(func.coalesce(func.sum(TrialCheckpoint.size_bytes), 0))
        .join(Job, Job.id == TrialCheckpoint.job_id)
        .where(Job.owner == owner)
    )
    return Usage(
        active_jobs=int(active_jobs),
        pending_trials=max(0, int(pending)),
        stored_bytes=int(uploads or 0) + int(models or 0) + int(checkpoints or 0),
    )


def set_quotas(
    session: Session,
    owner: str,
    *,
    active_jobs: int | None = None,
    pending_trials: int | None = None,
    stored_bytes: int | None = None,
    requests_per_minute: int | None = None,
    reset: bool = False,
) -> Owner:
    """Override some of ``owner``'s quotas (the others keep their values); ``reset`` first drops
    every override, so the service-wide defaults apply to what is not given."""
    row = lock_owner(session, check_owner_name(owner))
    if reset:
        row.quota_active_jobs = row.quota_pending_trials = row.quota_stored_bytes = None
        row.requests_per_minute = None
    if active_jobs is not None:
        row.quota_active_jobs = active_jobs
    if pending_trials is not None:
        row.quota_pending_trials = pending_trials
    if stored_bytes is not None:
        row.quota_stored_bytes = stored_bytes
    if requests_per_minute is not None:
        row.requests_per_minute = requests_per_minute
    session.flush()
    return row
