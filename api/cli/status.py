"""``hpsearch status``: the service as an operator sees it, read straight from the database (on
SQLite as on PostgreSQL, whichever broker): workers alive from their heartbeats, the queue, the
jobs running and what runs where."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from api.cli.common import console

#: a worker is alive if its reaper wrote within this many of its passes.
ALIVE_PASSES = 3


def _age(now: datetime, moment: datetime | None) -> float | None:
    return None if moment is None else round((now - moment).total_seconds(), 1)


def read_status() -> dict[str, Any]:
    """Everything ``hpsearch status`` shows, as plain data."""
    from db.engine import session_scope
    from db.repositories import service_stats, workers
    from db.settings import get_settings
    from db.values import as_utc, utcnow

    settings = get_settings()
    now = utcnow()
    with session_scope() as session:
        rows = workers.list_workers(session)
        by_process = service_stats.running_processes(session)
        trials = service_stats.trial_counts(session)
        jobs = service_stats.job_counts(session)
        running = service_stats.running_jobs(session)
        oldest = service_stats.oldest_waiting(session)
    alive_within = ALIVE_PASSES * settings.reaper_interval_s
    listed = []
    for row in rows:
        age = _age(now, as_utc(row.heartbeat_at))
        listed.append(
            {
                "name": row.name,
                "alive": row.stopped_at is None and age is not None and age <= alive_within,
                "heartbeat_age_s": age,
                "started_at": as_utc(row.started_at).isoformat(timespec="seconds"),
                "stopped": row.stopped_at is not None,
                "running_trials": sum(
                    p.running for name, p in by_process.items() if name.startswith(f"{row.name}:")
                ),
            }
        )
    return {
        "workers": listed,
        "workers_alive": sum(w["alive"] for w in listed),
        "queue": {"waiting_trials": trials["waiting"], "oldest_waiting_s": _age(now, oldest)},
        "trials": trials,
        "jobs": jobs,
        "running_jobs": [vars(job) for job in running],
    }


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print it as JSON.")] = False,
) -> None:
    """The service now: workers alive, the queue, the jobs running (read from its database).

    Run it where HPSEARCH_DATABASE_URL points at the service's database, on any broker.
    """
    state = read_status()
    if as_json:
        print(json.dumps(state, indent=2))
        return
    queue = state["queue"]
    oldest = queue["oldest_waiting_s"]
    console.print(
        f"[bold]{state['workers_alive']}[/] worker(s) alive; [bold]{queue['waiting_trials']}[/] "
        f"trial(s) waiting" + (f", the oldest for {oldest:.0f} s" if oldest is not None else "")
        + f"; {state['trials']['running']} running"
    )  # fmt: skip
    workers = Table("worker", "alive", "last heard", "running trials", title="workers")
    for worker in state["workers"]:
        workers.add_row(
            worker["name"],
            "[green]yes[/]" if worker["alive"] else ("stopped" if worker["stopped"] else "[red]no[/]"),
            f"{worker['heartbeat_age_s']:.0f} s ago",
            str(worker["running_trials"]),
        )  # fmt: skip
    console.print(workers)
    jobs = Table("job", "name", "owner", "running", "done", title="running jobs")
    for job in state["running_jobs"]:
        jobs.add_row(
            job["job_id"],
            job["name"] or "",
            job["owner"],
            str(job["running"]),
            f"{job['done']}/{job['max_trials']}",
        )
    console.print(jobs)
    console.print("jobs: " + ", ".join(f"{k} {v}" for k, v in state["jobs"].items()))
