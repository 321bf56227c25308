"""Celery workers saying they are alive (their reaper, at every pass) and that they stopped."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.engine import session_scope
from db.models import WorkerProcess
from db.transient import retried
from db.values import utcnow


@retried("say a worker is alive")
def note_alive(name: str, hostname: str, pid: int, started_at: datetime) -> None:
    """Worker ``name`` is alive now (its row is created on the first call)."""
    now = utcnow()
    with session_scope() as session:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        insert = dialect.insert(WorkerProcess).values(
            name=name, hostname=hostname, pid=pid, started_at=started_at, heartbeat_at=now
        )
        session.execute(
            insert.on_conflict_do_update(
                index_elements=["name"], set_={"heartbeat_at": now, "stopped_at": None}
            )
        )


@retried("say a worker stopped")
def note_stopped(name: str) -> None:
    """Worker ``name`` shut down warmly."""
    with session_scope() as session:
        session.execute(
            update(WorkerProcess).where(WorkerProcess.name == name).values(stopped_at=utcnow())
        )


def list_workers(session: Session) -> list[WorkerProcess]:
    """Every worker that ever said it was alive, the most recently heard first."""
    return list(session.scalars(select(WorkerProcess).order_by(WorkerProcess.heartbeat_at.desc())))
