"""A fault soak: real searches on PostgreSQL + Redis with two workers while the database is
restarted, blipped (every backend of the service terminated) and lock-frozen (a process takes a
running job's row lock and is frozen with SIGSTOP) again and again. The database is a throwaway
cluster of the benchmark's own (tests/pg_cluster.py); the shared server is never touched.

Counts the trials expected, completed, failed (and why), lost (left waiting or running), run
more than once, the jobs failed, and for each fault the time until the service trains again.
Target: 0 failed for a database reason, 0 lost, 0 run twice, 0 jobs failed.

    python -m bench.fault_soak [--faults 24] [--every-s 7]
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import create_engine, text

from api.cli.demo import child_process, free_port, wait_until_healthy
from api.client import ApiClient
from bench.common import REDIS_URL, arg_parser, write_result
from tests.pg_cluster import ThrowawayCluster

RESULT = "fault_soak"
#: jobs kept queued or running while the faults go on.
ACTIVE_JOBS = 2
KINDS = ("restart", "blip", "lock_freeze")
#: the service's settings for the soak: short leases and bounds, so faults bite and heal fast.
SETTINGS = {
    "HPSEARCH_HEARTBEAT_INTERVAL_S": "1",
    "HPSEARCH_STALE_AFTER_S": "6",
    "HPSEARCH_REAPER_INTERVAL_S": "1",
    "HPSEARCH_DB_LOCK_TIMEOUT_S": "2",
    "HPSEARCH_DB_IDLE_IN_TRANSACTION_TIMEOUT_S": "5",
    "HPSEARCH_SEARCH_STEP_TIMEOUT_S": "60",
    "HPSEARCH_MAX_CONCURRENT_TRIALS_PER_JOB": "2",
    "HPSEARCH_LOG_LEVEL": "WARNING",
}

#: holds a job's row lock until killed (frozen meanwhile: a lock holder that stopped talking).
LOCK_HOLDER = """
import sys, time
from sqlalchemy import create_engine, text
engine = create_engine(sys.argv[1])
with engine.connect() as conn:
    # the lock a worker takes to change a job's search
    conn.execute(text("SELECT id FROM jobs WHERE id = :id FOR NO KEY UPDATE"), {"id": sys.argv[2]})
    print("locked", flush=True)
    time.sleep(3600)
"""


def spec(index: int) -> dict[str, Any]:
    """Tiny nets on digits, a few seconds a trial, the algorithms in turn."""
    algorithm = ("random", "bayesian", "hyperband")[index % 3]
    search: dict[str, Any] = {"algorithm": algorithm, "max_trials": 10, "seed": index}
    if algorithm == "bayesian":
        search["num_initial_points"] = 2
    if algorithm == "hyperband":
        search["hyperband_factor"] = 3
    return {
        "name": f"soak-{index}",
        "dataset": {"name": "digits", "max_rows": 300, "split_seed": 1},
        "model": {
            "depth": {"type": "int", "min": 1, "max": 2},
            "units": {"type": "choice", "values": [8, 16, 32]},
        },
        "optimizer": {"learning_rate": {"type": "choice", "values": [0.01, 0.003]}},
        "training": {"epochs": 8, "batch_size": 8, "early_stopping": {"enabled": False}},
        "search": search,
    }


class Soak:
    """The cluster, the service and what the faults did."""

    def __init__(self, pg: ThrowawayCluster, client: ApiClient, logs: Path) -> None:
        self.pg, self.client, self.logs = pg, client, logs
        self.engine = create_engine(pg.url, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
        self.faults: list[dict[str, Any]] = []
        self.jobs: list[str] = []

    def sql(self, query: str, **params: Any) -> list[Any]:
        for _ in range(100):  # the database may be restarting
            try:
                with self.engine.connect() as conn:
                    return list(conn.execute(text(query), params))
            except Exception:
                time.sleep(0.2)
        raise RuntimeError("the database did not come back")

    def running_job(self) -> str | None:
        rows = self.sql("SELECT id FROM jobs WHERE status = 'running' ORDER BY random() LIMIT 1")
        return rows[0][0] if rows else None

    def wait_training(self, timeout: float = 60) -> None:
        """Until a trial trains (it has recorded an epoch): each fault hits work in flight."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.sql(
            "SELECT 1 FROM trials WHERE status = 'running' AND epochs_run > 0 LIMIT 1"
        ):
            time.sleep(0.1)

    def active_jobs(self) -> int:
        return len(self.sql("SELECT id FROM jobs WHERE status IN ('queued', 'running')"))

    def fault(self, kind: str) -> dict[str, Any]:
        started = time.monotonic()
        record: dict[str, Any] = {"kind": kind, "at": datetime.now(UTC).isoformat()}
        if kind == "restart":
            down = random.uniform(1.0, 3.0)
            self.pg.restart(down_s=down)
            record["down_s"] = round(down, 2)
        elif kind == "blip":
            killed = self.sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name LIKE 'hpsearch %'"
            )
            record["backends_terminated"] = len(killed)
        else:
            job_id = self.running_job()
            record["job"] = job_id
            if job_id is not None:
                holder = subprocess.Popen(
                    [sys.executable, "-c", LOCK_HOLDER, self.pg.url, job_id],
                    stdout=subprocess.PIPE,
                )
                assert holder.stdout is not None
                holder.stdout.readline()  # "locked"
                holder.send_signal(signal.SIGSTOP)
                time.sleep(8)  # past the idle-in-transaction bound: the server cuts it
                holder.kill()
                holder.wait()
        ended = datetime.now(UTC)
        record["fault_s"] = round(time.monotonic() - started, 2)
        record["recovery_s"] = self._recovery(ended)
        return record

    def _recovery(self, since: datetime, timeout: float = 120) -> float | None:
        """Seconds from ``since`` until an epoch is written again (None: nothing left to run)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            first = self.sql("SELECT min(created_at) FROM epochs WHERE created_at > :t", t=since)
            if first and first[0][0] is not None:
                return round((first[0][0] - since).total_seconds(), 2)
            if not self.sql("SELECT 1 FROM jobs WHERE status IN ('queued', 'running') LIMIT 1"):
                return None
            time.sleep(0.2)
        return None


def counts(soak: Soak) -> dict[str, Any]:
    """What became of every job and trial."""
    jobs = soak.sql("SELECT id, status, error, max_trials FROM jobs WHERE name LIKE 'soak-%'")
    trials = soak.sql(
        "SELECT t.job_id, t.number, t.status, t.attempts, t.failure_reason, t.epochs_run, "
        "(SELECT count(*) FROM epochs e WHERE e.trial_id = t.id) AS epochs, "
        "(SELECT count(DISTINCT (e.execution, e.epoch)) FROM epochs e WHERE e.trial_id = t.id) "
        "AS distinct_epochs FROM trials t JOIN jobs j ON j.id = t.job_id WHERE j.name LIKE 'soak-%'"
    )
    failed = [
        {"job": t.job_id, "number": t.number, "reason": t.failure_reason}
        for t in trials
        if t.status in ("failed", "cancelled")
    ]
    return {
        "jobs": len(jobs),
        "jobs_failed": sum(j.status != "succeeded" for j in jobs),
        "job_errors": [j.error for j in jobs if j.error],
        "trials_expected": sum(j.max_trials for j in jobs),
        "trials": len(trials),
        "completed": sum(t.status == "completed" for t in trials),
        "diverged": sum(t.status == "diverged" for t in trials),
        "failed": failed,
        "lost": sum(t.status in ("waiting", "running") for t in trials),
        "run_more_than_once": sum(t.attempts != 1 for t in trials),
        "epochs_doubled": sum(
            t.epochs != t.distinct_epochs or t.epochs != t.epochs_run for t in trials
        ),
    }


def run(faults: int, every_s: float, seed: int) -> dict[str, Any]:
    random.seed(seed)
    logs = Path(tempfile.mkdtemp(prefix="hpsearch-soak-"))
    redis.Redis.from_url(REDIS_URL).flushdb()
    pg = ThrowawayCluster().create()
    started = time.monotonic()
    try:
        from db.migrate import upgrade

        upgrade(pg.url)
        env = {
            **SETTINGS,
            "HPSEARCH_DATABASE_URL": pg.url,
            "HPSEARCH_BROKER_URL": REDIS_URL,
            "HPSEARCH_DATA_DIR": str(logs / "data"),
        }
        saved = dict(os.environ)
        os.environ.update(env)
        try:
            with ExitStack() as stack:
                port = free_port()
                processes = {
                    "api": stack.enter_context(
                        child_process("api", ["serve", "--port", str(port), "--no-migrate"], logs)
                    ),
                    "worker1": stack.enter_context(child_process("worker1", ["worker"], logs)),
                    "worker2": stack.enter_context(child_process("worker2", ["worker"], logs)),
                }
                client = stack.enter_context(ApiClient(f"http://127.0.0.1:{port}"))
                wait_until_healthy(client, processes, logs, timeout=120)
                soak = Soak(pg, client, logs)
                index = 0
                for n in range(faults):
                    time.sleep(every_s)
                    while soak.active_jobs() < ACTIVE_JOBS:  # work for every fault to hit
                        soak.jobs.append(_submit(client, spec(index)))
                        index += 1
                    soak.wait_training()
                    record = soak.fault(KINDS[n % len(KINDS)])
                    print(json.dumps(record), flush=True)
                    soak.faults.append(record)
                _wait_all(soak, timeout=900)
                result = counts(soak)
        finally:
            os.environ.clear()
            os.environ.update(saved)
    finally:
        pg.destroy()
    recoveries = [f["recovery_s"] for f in soak.faults if f["recovery_s"] is not None]
    return {
        "settings": SETTINGS,
        "faults": len(soak.faults),
        "by_kind": {k: sum(f["kind"] == k for f in soak.faults) for k in KINDS},
        "recovery_s": {
            "max": max(recoveries, default=None),
            "median": sorted(recoveries)[len(recoveries) // 2] if recoveries else None,
        },
        **result,
        "wall_s": round(time.monotonic() - started, 1),
        "fault_log": soak.faults,
        "logs": str(logs),
    }


def _submit(client: ApiClient, body: dict[str, Any]) -> str:
    for _ in range(60):  # the API answers 503 while the database restarts: a client retries
        try:
            return str(client.submit(body)["id"])
        except Exception:
            time.sleep(1)
    raise RuntimeError("submission kept failing")


def _wait_all(soak: Soak, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while soak.sql("SELECT 1 FROM jobs WHERE status IN ('queued', 'running') LIMIT 1"):
        if time.monotonic() > deadline:
            raise TimeoutError("jobs still active after the soak")
        time.sleep(1)


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--faults", type=int, default=24)
    parser.add_argument("--every-s", type=float, default=7.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default=RESULT)
    args = parser.parse_args()
    result = run(args.faults, args.every_s, args.seed)
    print(json.dumps({k: v for k, v in result.items() if k != "fault_log"}, indent=2))
    print(write_result(args.name, result))


if __name__ == "__main__":
    main()
