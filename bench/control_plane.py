"""How far one PostgreSQL carries the service: one job of 2,000 half-second trials on 16 worker
processes (PostgreSQL + Redis), each trial a stub that sleeps instead of fitting
(bench/stub_worker.py), so what is measured is the control plane: claims, leases, epoch records,
results under the job's lock, the search algorithm's steps, dispatch, the broker.

Reports the wall time against the floor (trials x duration / processes), claims and results per
second, and where the time goes: per trial, the claim, the job's lock (waited for), the result
with the next dispatch, and the gap between a process's trials (the broker). Anchor: Ray Tune's
published run of 10,000 one-second trials on 16 CPUs, 715 s against a 625 s floor (+14%).

    python -m bench.control_plane [--trials 2000] [--processes 16] [--trial-s 0.5]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from itertools import pairwise
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import create_engine, text

from api.cli.demo import api_process, child_process, free_port, stop_group, wait_until_healthy
from api.client import ApiClient
from bench.common import REDIS_URL, arg_parser, fresh_postgres_database, write_result

RESULT = "control_plane"


def spec(trials: int, seed: int) -> dict[str, Any]:
    """A random search with room for ``trials`` distinct configurations."""
    return {
        "name": f"control-plane-{trials}",
        "dataset": {"name": "digits"},
        "model": {
            "depth": {"type": "int", "min": 1, "max": 4},
            "units": {"type": "int", "min": 8, "max": 512},
            "dropout": {"type": "float", "min": 0.0, "max": 0.5},
        },
        "optimizer": {
            "learning_rate": {"type": "float", "min": 1e-4, "max": 1e-1, "sampling": "log"}
        },
        "training": {"epochs": 1},
        "search": {"algorithm": "random", "max_trials": trials, "seed": seed},
    }


def _wait(client: ApiClient, job_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = client.job(job_id)
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job['status']}")
        time.sleep(0.5)


def _trial_rows(database_url: str, job_id: str) -> list[dict[str, Any]]:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT number, status, attempts, worker, started_at, finished_at "
                "FROM trials WHERE job_id = :job ORDER BY number"
            ),
            {"job": job_id},
        ).mappings()
        found = [dict(r) for r in rows]
        job = conn.execute(
            text("SELECT created_at, started_at, finished_at FROM jobs WHERE id = :job"),
            {"job": job_id},
        ).one()
    engine.dispose()
    return [{"job": dict(job._mapping)}, *found]


def _timings(folder: Path, since: float) -> dict[str, list[float]]:
    """The stub's per-step records since ``since`` (perf_counter of the worker processes:
    CLOCK_MONOTONIC, shared by the processes of one machine)."""
    out: dict[str, list[float]] = {}
    gaps: list[float] = []
    for path in folder.glob("*.jsonl"):
        ends: list[tuple[float, float]] = []
        for line in path.read_text().splitlines():
            record = json.loads(line)
            stamp = record.get("start", record.get("at", record.get("claim_at", 0.0)))
            if stamp < since:
                continue
            for key in ("load_s", "record_s", "conclude_s", "lock_wait_s", "claim_s"):
                if key in record:
                    out.setdefault(key, []).append(record[key])
            if "end" in record:
                ends.append((record["start"], record["end"]))
        ends.sort()
        gaps += [b[0] - a[1] for a, b in pairwise(ends)]
    out["gap_between_trials_s"] = gaps
    return out


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {
        "n": len(values),
        "mean_ms": round(1000 * statistics.fmean(values), 2),
        "median_ms": round(1000 * statistics.median(values), 2),
        "p95_ms": round(1000 * ordered[int(0.95 * (len(ordered) - 1))], 2),
        "total_s": round(sum(values), 2),
    }


def run(trials: int, processes: int, trial_s: float, queued_per_process: int) -> dict[str, Any]:
    timings = Path(tempfile.mkdtemp(prefix="hpsearch-bench-timings-"))
    logs = Path(tempfile.mkdtemp(prefix="hpsearch-bench-logs-"))
    redis_url = REDIS_URL
    redis.Redis.from_url(redis_url).flushdb()
    with fresh_postgres_database() as database_url, ExitStack() as stack:
        env = {
            "HPSEARCH_DATABASE_URL": database_url,
            "HPSEARCH_BROKER_URL": redis_url,
            "HPSEARCH_DATA_DIR": str(logs / "data"),
            # trials of the job queued or running at once: with more than one per process, a
            # process that ends a trial finds the next one waiting instead of waiting for it.
            "HPSEARCH_MAX_CONCURRENT_TRIALS_PER_JOB": str(processes * queued_per_process),
            "HPSEARCH_BENCH_TIMINGS_DIR": str(timings),
            "HPSEARCH_BENCH_TRIAL_S": str(trial_s),
            "HPSEARCH_LOG_LEVEL": "WARNING",
            # A stub trial grows no TensorFlow graphs: recycling a process (which imports
            # TensorFlow again, 3-6 s of CPU) would measure the machine, not the control plane.
            "HPSEARCH_WORKER_MAX_TASKS_PER_CHILD": "1000000",
        }
        saved = dict(os.environ)
        os.environ.update(env)
        try:
            stack.enter_context(child_process("migrate", ["migrate"], logs)).wait()
            port = free_port()
            api = stack.enter_context(api_process(port, logs))
            with (logs / "worker.log").open("ab") as log:
                worker = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "bench.stub_worker:app",
                        "worker",
                        "--concurrency",
                        str(processes),
                        "--loglevel",
                        "WARNING",
                        "--queues",
                        "hpsearch",
                        "--pool",
                        "prefork",
                    ],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            stack.callback(stop_group, worker, 60)
            client = stack.enter_context(ApiClient(f"http://127.0.0.1:{port}"))
            wait_until_healthy(client, {"api": api}, logs, timeout=120)
            print("warming up the worker processes (TensorFlow imports in each)...", flush=True)
            warm = client.submit(spec(processes * 4, seed=1))["id"]
            _wait(client, warm, timeout=600)
            time.sleep(2)
            print(f"timing {trials} trials of {trial_s} s on {processes} processes", flush=True)
            since = time.perf_counter()
            started = time.monotonic()
            job_id = client.submit(spec(trials, seed=2))["id"]
            job = _wait(client, job_id, timeout=3600)
            wall_client = time.monotonic() - started
        finally:
            os.environ.clear()
            os.environ.update(saved)
        job_row, *rows = _trial_rows(database_url, job_id)
    steps = _timings(timings, since)
    report = _report(job, job_row["job"], rows, steps, trials, processes, trial_s, wall_client)
    return {"max_concurrent_trials_per_job": processes * queued_per_process, **report}


def _report(
    job: dict[str, Any],
    job_row: dict[str, Any],
    rows: list[dict[str, Any]],
    steps: dict[str, list[float]],
    trials: int,
    processes: int,
    trial_s: float,
    wall_client: float,
) -> dict[str, Any]:
    floor = trials * trial_s / processes
    wall = (job_row["finished_at"] - job_row["created_at"]).total_seconds()
    first = min(r["started_at"] for r in rows)
    last = max(r["finished_at"] for r in rows)
    span = (last - first).total_seconds()
    per_process: dict[str, int] = {}
    for r in rows:
        per_process[str(r["worker"])] = per_process.get(str(r["worker"]), 0) + 1
    return {
        "trials": trials,
        "processes": processes,
        "trial_s": trial_s,
        "job_status": job["status"],
        "trials_completed": sum(r["status"] == "completed" for r in rows),
        "trials_run_twice": sum(r["attempts"] != 1 for r in rows),
        "floor_s": round(floor, 2),
        "wall_s": round(wall, 2),
        "wall_client_s": round(wall_client, 2),
        "over_floor": round(wall / floor - 1, 4),
        "first_claim_after_submit_s": round((first - job_row["created_at"]).total_seconds(), 3),
        "claims_per_s": round(trials / span, 2),
        "results_per_s": round(trials / span, 2),
        "trials_per_process": {
            "min": min(per_process.values()),
            "max": max(per_process.values()),
        },
        "per_trial": {name: _summary(values) for name, values in steps.items()},
    }


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--trials", type=int, default=2000)
    parser.add_argument("--processes", type=int, default=16)
    parser.add_argument("--trial-s", type=float, default=0.5)
    parser.add_argument(
        "--queued-per-process",
        type=int,
        default=2,
        help="the job's concurrency cap, per worker process (queued + running trials)",
    )
    parser.add_argument("--name", default=RESULT, help="result file name under bench/results/")
    args = parser.parse_args()
    result = run(args.trials, args.processes, args.trial_s, args.queued_per_process)
    print(json.dumps(result, indent=2))
    print(write_result(args.name, result))


if __name__ == "__main__":
    main()
