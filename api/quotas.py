"""Per-owner quotas: queued/running jobs, trials still to run, bytes stored.

Checked inside the transaction that would pass them, under the owner's row lock
(``db.repositories.owners.lock_owner``), so concurrent requests of one owner cannot overshoot together.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from api.errors import QuotaExceededError
from db.models import Owner
from db.repositories import owners
from db.settings import Settings


@dataclass(frozen=True)
class Quotas:
    """An owner's limits: its own overrides, else the service's defaults."""

    active_jobs: int
    pending_trials: int
    stored_bytes: int

    @classmethod
    def of(cls, owner: Owner | None, settings: Settings) -> Quotas:
        def pick(override: int | None, default: int) -> int:
            return default if override is None else override

        return cls(
            active_jobs=pick(owner and owner.quota_active_jobs, settings.quota_active_jobs),
            pending_trials=pick(
                owner and owner.quota_pending_trials, settings.quota_pending_trials
            ),
            stored_bytes=pick(owner and owner.quota_stored_bytes, settings.quota_stored_bytes),
        )


def _storage_error(owner: str, limit: int, used: int, adding: int) -> QuotaExceededError:
    return QuotaExceededError(
        "stored_bytes",
        limit,
        used,
        f"quota stored_bytes of owner {owner!r}: {used} bytes stored"
        + (f" + {adding} new" if adding else "")
        + f" would pass the limit of {limit}; delete datasets or finished jobs to free space",
        retry_after_s=None,
    )


def check_new_job(session: Session, settings: Settings, owner: str, max_trials: int) -> None:
    """429 unless ``owner`` may queue one more job of ``max_trials`` trials."""
    quotas = Quotas.of(owners.lock_owner(session, owner), settings)
    used = owners.usage(session, owner)
    retry = settings.quota_retry_after_s
    if used.active_jobs + 1 > quotas.active_jobs:
        raise QuotaExceededError(
            "active_jobs",
            quotas.active_jobs,
            used.active_jobs,
            f"quota active_jobs of owner {owner!r}: {used.active_jobs} jobs are queued or "
            f"running (limit {quotas.active_jobs}); wait for one to end or cancel one",
            retry,
        )
    if used.pending_trials + max_trials > quotas.pending_trials:
        raise QuotaExceededError(
            "pending_trials",
            quotas.pending_trials,
            used.pending_trials,
            f"quota pending_trials of owner {owner!r}: {used.pending_trials} trials still to "
            f"run + {max_trials} asked would pass the limit of {quotas.pending_trials}",
            retry,
        )
    if used.stored_bytes >= quotas.stored_bytes:
        raise _storage_error(owner, quotas.stored_bytes, used.stored_bytes, 0)


def check_new_upload(session: Session, settings: Settings, owner: str, stored_bytes: int) -> None:
    """429 unless ``owner`` may store ``stored_bytes`` more."""
    quotas = Quotas.of(owners.lock_owner(session, owner), settings)
    used = owners.usage(session, owner).stored_bytes
    if used + stored_bytes > quotas.stored_bytes:
        raise _storage_error(owner, quotas.stored_bytes, used, stored_bytes)
