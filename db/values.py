"""The values every repository shares: one clock, one id pattern, JSON every database accepts."""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, datetime
from typing import Any

#: the ids of jobs and uploaded datasets: 32 lowercase hex digits (a uuid4 without dashes).
ID_PATTERN = re.compile(r"[0-9a-f]{32}")


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC: every timestamp the service stores."""
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes (stored as UTC): make them aware."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def new_id() -> str:
    """A fresh id matching ``ID_PATTERN``."""
    return uuid.uuid4().hex


def is_id(value: str) -> bool:
    """Whether ``value`` can be an id at all (anything else need not reach the database)."""
    return ID_PATTERN.fullmatch(value) is not None


def json_safe(value: Any) -> Any:
    """Plain JSON: numpy scalars become Python numbers, NaN/inf become null (PostgreSQL's JSON
    rejects them)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
