"""The service as a whole: workers' heartbeats, running jobs, the queue (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from api.cli.status import read_status
from db.engine import session_scope
from db.models import WorkerProcess
from db.repositories import service_stats, workers
from db.values import utcnow
from tests.db.helpers import age, claimed, new_job, waiting


def test_status_tells_live_workers_from_silent_and_stopped_ones(store: str) -> None:
    started = utcnow()
    for name in ("h:1", "h:2", "h:3"):
        workers.note_alive(name, "h", int(name[-1]), started)
    workers.note_stopped("h:3")
    with session_scope() as session:  # h:2 went silent ten minutes ago
        session.execute(
            update(WorkerProcess)
            .where(WorkerProcess.name == "h:2")
            .values(heartbeat_at=utcnow() - timedelta(minutes=10))
        )
    job_id = new_job()
    claimed(job_id, "h:1:7")
    claimed(job_id, "h:1:8")
    (old,) = waiting(job_id, 1, first=5)
    age(old, enqueued_s=40)
    state = read_status()
    alive = {w["name"]: (w["alive"], w["stopped"], w["running_trials"]) for w in state["workers"]}
    assert alive == {"h:1": (True, False, 2), "h:2": (False, False, 0), "h:3": (False, True, 0)}
    assert state["workers_alive"] == 1
    assert state["queue"]["waiting_trials"] == 1
    assert 39 <= state["queue"]["oldest_waiting_s"] < 80
    (running,) = state["running_jobs"]
    assert (running["job_id"], running["running"]) == (job_id, 2)
    workers.note_alive("h:3", "h", 3, started)  # a restarted worker is alive again
    with session_scope() as session:
        assert {w.name for w in workers.list_workers(session) if w.stopped_at is None} == {
            "h:1",
            "h:2",
            "h:3",
        }
        processes = service_stats.running_processes(session)
        assert {name: p.running for name, p in processes.items()} == {"h:1:7": 1, "h:1:8": 1}
