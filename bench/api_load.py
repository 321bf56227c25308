"""API under load: 50 clients polling job status and leaderboards of big stored jobs.

    .venv/bin/python -m bench.api_load [--jobs 5] [--trials 1000] [--epochs 20] [--users 50]
        [--duration 30] [--repeats 2] [--databases sqlite postgres] [--api-key KEY]
        [--oracle-state kept|omitted] [--result api_load]

For each database (the embedded SQLite default, and PostgreSQL in a fresh database) the script
migrates, then seeds finished random-search jobs directly with the project's models: each with
``--trials`` trials (hyperparameters and oracle state from the service's own Keras Tuner oracle,
fed simulated scores) and ``--epochs`` epoch rows per trial. It then starts the real
``hpsearch serve`` process (no worker) and runs locust (``bench/locustfile.py``, headless,
``--users`` users spawned at once, or ``--spawn-rate`` per second with the stats taken over the
``--duration`` seconds after the ramp), in two modes: polling clients with a
think time of 0.5-1.5 s between requests (the realistic case) and a saturation run with no
think time. Repetitions alternate the order of databases and modes. The load generator runs on
the same machine as the server and shares its cores. Reports requests per second, p50 and p99
per endpoint from locust's CSV, and the CPU seconds the API process and locust used. Writes
``bench/results/api_load.json``. Target: p99 under 50 ms for status polls (realistic case).

Each job row keeps its oracle state as the service stores it (every Keras Tuner trial, ~3 MB of
JSON for 1000 trials); ``--oracle-state omitted`` leaves it null, to see what reading it costs.
A random search asks for at most 500 trials; 1000 per job (as a Hyperband search can reach) makes
the leaderboard queries harder than any random search's.

``--api-key`` (default ``$HPSEARCH_API_KEY``) is sent as ``Authorization: Bearer <key>``, for a
service in keys mode; the default open mode needs none.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert
from sqlalchemy.orm import Session

from api.client import ApiClient
from bench.common import (
    REDIS_URL,
    arg_parser,
    fresh_postgres_database,
    running_service,
    write_result,
)
from bench.overhead import overhead_spec
from db.migrate import upgrade
from db.models import Epoch, Job, JobStatus, Trial, TrialStatus, new_id
from db.settings import get_settings

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
MODES = {"polling": 1.0, "saturation": 0.0}  # mode -> mean think time (s)
STATUS_ENDPOINT = "GET /jobs/{id}"
EPOCH_CHUNK = 5000
SERVING_PACKAGES = ("locust", "fastapi", "uvicorn", "psycopg", "pydantic")


# -- seeding ---------------------------------------------------------------------------------


@contextmanager
def applied_env(env: dict[str, str]) -> Iterator[None]:
    """``env`` in ``os.environ`` (and the settings re-read) for the duration of the block."""
    saved = dict(os.environ)
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()


def simulated_search(spec_dict: dict[str, Any], trials: int, seed: int) -> tuple[Any, list[Any]]:
    """The service's own oracle for ``spec_dict``, run for ``trials`` trials on simulated scores;
    returns the oracle and its trials (hyperparameters and score), in order."""
    import keras_tuner as kt

    from search_spaces.hyperparameters import build_hyperparameters
    from search_spaces.schema import JobSpec
    from worker.training.oracle import NEVER_STOP, RandomOracle

    spec = JobSpec.model_validate(spec_dict)
    oracle = RandomOracle(
        objective=kt.Objective(spec.objective, spec.direction),
        hyperparameters=build_hyperparameters(spec),
        max_trials=trials,
        seed=seed,
        max_retries_per_trial=0,
        max_consecutive_failed_trials=NEVER_STOP,
    )
    oracle.verbose = 0
    rng = random.Random(seed)
    done = []
    for _ in range(trials):
        trial = oracle.create_trial(f"trial-{len(done)}")
        oracle.update_trial(trial.trial_id, {spec.objective: rng.uniform(0.80, 0.985)}, step=5)
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
        done.append(trial)
    return oracle, done


def epoch_metrics(rng: random.Random, score: float, epoch: int, epochs: int) -> dict[str, float]:
    """Plausible learning-curve metrics that reach ``score`` at the last epoch."""
    progress = (epoch + 1) / epochs
    val_accuracy = score * (0.85 + 0.15 * progress) + rng.uniform(-0.005, 0.005)
    return {
        "loss": round(1.5 * (1 - progress) + 0.1 + rng.uniform(0, 0.02), 5),
        "accuracy": round(min(1.0, val_accuracy + 0.02), 5),
        "val_loss": round(1.6 * (1 - progress) + 0.15 + rng.uniform(0, 0.02), 5),
        "val_accuracy": round(min(1.0, val_accuracy), 5),
    }


def trial_row(
    job_id: str, kt_trial: Any, rng: random.Random, epochs: int, start: datetime
) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """One trial row (a dict for a bulk insert) and its epochs' metrics."""
    number = int(kt_trial.trial_id)
    score = float(kt_trial.score)
    roll = rng.random()
    status = TrialStatus.COMPLETED if roll > 0.03 else TrialStatus.FAILED
    run = epochs if status is TrialStatus.COMPLETED else rng.randint(1, 3)
    curve = [epoch_metrics(rng, score, e, epochs) for e in range(run)]
    duration = rng.uniform(2.0, 20.0)
    started = start + timedelta(seconds=20 * number)
    completed = status is TrialStatus.COMPLETED
    row = {
        "job_id": job_id,
        "number": number,
        "status": status,
        "hyperparameters": dict(kt_trial.hyperparameters.values),
        "score": curve[-1]["val_accuracy"] if completed else None,
        "best_epoch": run - 1 if completed else None,
        "epochs_run": run,
        "metrics": curve[-1] if completed else None,
        "parameter_count": rng.randint(1_000, 60_000),
        "failure_reason": None if completed else "ValueError: simulated failure",
        "started_at": started,
        "finished_at": started + timedelta(seconds=duration),
        "duration_s": duration,
        "fit_duration_s": duration * 0.95,
        "attempts": 1,
        "worker": "bench:1:2",
    }
    return row, curve


def job_row(
    spec_dict: dict[str, Any], oracle_state: Any, rows: list[dict[str, Any]], start: datetime
) -> Job:
    """The finished job over ``rows``."""
    from search_spaces.schema import JobSpec

    spec = JobSpec.model_validate(spec_dict)
    scored = [r for r in rows if r["score"] is not None]
    best = max(scored, key=lambda r: r["score"])
    return Job(
        name=spec.name,
        status=JobStatus.SUCCEEDED,
        spec=spec.model_dump(mode="json"),
        warnings=[],
        algorithm=spec.search.algorithm,
        dataset=spec.dataset.name,
        objective=spec.objective,
        direction=spec.direction,
        max_trials=len(rows),
        trials_completed=len(scored),
        trials_failed=len(rows) - len(scored),
        best_trial_number=best["number"],
        best_score=best["score"],
        dataset_info={"name": "digits", "rows_train": 1437, "rows_val": 360, "split_seed": 0},
        oracle_state=oracle_state,
        attempts=1,
        created_at=start,
        started_at=start,
        finished_at=max(r["finished_at"] for r in rows),
    )


def seed_job(session: Session, index: int, args: argparse.Namespace) -> tuple[str, int]:
    """Insert one finished job with its trials and epochs; returns its id and the size of its
    stored oracle state (bytes of JSON)."""
    trials, epochs = args.trials, args.epochs
    rng = random.Random(index)
    spec = overhead_spec(min(trials, 500))
    spec["name"] = f"bench-api-load-{index}"
    oracle, kt_trials = simulated_search(spec, trials, seed=index)
    start = datetime.now(UTC) - timedelta(days=1)
    job_id = new_id()
    rows, curves = [], []
    for kt_trial in kt_trials:
        row, curve = trial_row(job_id, kt_trial, rng, epochs, start)
        rows.append(row)
        curves.append(curve)
    state = oracle.get_db_state() if args.oracle_state == "kept" else None
    job = job_row(spec, state, rows, start)
    job.id = job_id
    session.add(job)
    session.flush()
    ids = session.scalars(insert(Trial).returning(Trial.id, sort_by_parameter_order=True), rows)
    epoch_rows = [
        {"trial_id": trial_id, "execution": 0, "epoch": e, "metrics": m, "duration_s": 0.5}
        for trial_id, curve in zip(ids.all(), curves, strict=True)
        for e, m in enumerate(curve)
    ]
    for chunk in range(0, len(epoch_rows), EPOCH_CHUNK):
        session.execute(insert(Epoch), epoch_rows[chunk : chunk + EPOCH_CHUNK])
    return job_id, len(json.dumps(state)) if state else 0


def seed_database(env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    """Migrate the database of ``env`` and seed it; returns the job ids and what it took."""
    started = time.perf_counter()
    with applied_env(env):
        url = get_settings().resolved_database_url()
        upgrade(url)
        engine = create_engine(url)
        try:
            with Session(engine) as session, session.begin():
                seeded = [seed_job(session, i, args) for i in range(args.jobs)]
        finally:
            engine.dispose()
    return {
        "job_ids": [job_id for job_id, _ in seeded],
        "oracle_state_bytes": [size for _, size in seeded],
        "seed_s": round(time.perf_counter() - started, 1),
    }


def database_env(kind: str, root: Path, stack: ExitStack) -> dict[str, str]:
    """Settings of a fresh database: the embedded SQLite default or PostgreSQL (+ Redis)."""
    data_dir = root / kind
    if kind == "sqlite":
        # exactly what the embedded default resolves to, spelled out
        return {
            "HPSEARCH_DATA_DIR": str(data_dir),
            "HPSEARCH_DATABASE_URL": f"sqlite:///{(data_dir / 'hpsearch.db').resolve()}",
            "HPSEARCH_BROKER_URL": f"sqla+sqlite:///{(data_dir / 'broker.db').resolve()}",
        }
    return {
        "HPSEARCH_DATA_DIR": str(data_dir),
        "HPSEARCH_DATABASE_URL": stack.enter_context(fresh_postgres_database()),
        "HPSEARCH_BROKER_URL": REDIS_URL,
    }


# -- load ------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def api_pid(port: int) -> int:
    """The ``hpsearch serve --port PORT`` process started by this one."""
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in argv and str(port).encode() in argv:
            return int(entry.name)
    raise RuntimeError(f"no API process on port {port}")


def warm_up(client: ApiClient, job_ids: list[str]) -> None:
    """A few requests per endpoint, so first-request costs stay out of the measurement."""
    for job_id in job_ids:
        client.job(job_id)
        client.trials(job_id, sort="score")
        client.trials(job_id, sort="duration_s", order="desc")


def read_locust_stats(path: Path) -> dict[str, dict[str, Any]]:
    """Per endpoint (and ``Aggregated``): requests, failures, rps, p50, p99 (ms)."""
    stats = {}
    with path.open() as handle:
        for row in csv.DictReader(handle):
            stats[row["Name"]] = {
                "requests": int(row["Request Count"]),
                "failures": int(row["Failure Count"]),
                "rps": round(float(row["Requests/s"]), 1),
                "p50_ms": float(row["50%"]),
                "p99_ms": float(row["99%"]),
                "max_ms": round(float(row["Max Response Time"]), 1),
            }
    return stats


def run_locust(
    url: str, job_ids: list[str], think_s: float, args: argparse.Namespace, out: Path
) -> dict[str, Any]:
    """One headless locust run against ``url``; its per-endpoint stats and the CPU it used."""
    env = {
        **os.environ,
        "HPSEARCH_BENCH_JOB_IDS": ",".join(job_ids),
        "HPSEARCH_BENCH_THINK_S": str(think_s),
    }
    if args.api_key:
        env["HPSEARCH_API_KEY"] = args.api_key
    spawn_rate = args.spawn_rate or args.users
    ramp_s = math.ceil(args.users / spawn_rate) if args.spawn_rate else 0
    command = [
        *(sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"),
        *("-u", str(args.users), "-r", str(spawn_rate), "-t", f"{args.duration + ramp_s}s"),
        *("--host", url, "--csv", str(out), "--only-summary", "--loglevel", "WARNING"),
        # with a ramp, only the steady state counts: locust resets its stats once all users run
        *(("--reset-stats",) if args.spawn_rate else ()),
    ]
    pid = api_pid(int(url.rsplit(":", 1)[1]))
    api_before, children_before = cpu_seconds(pid), resource.getrusage(resource.RUSAGE_CHILDREN)
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    stats_path = out.parent / f"{out.name}_stats.csv"
    if not stats_path.exists():
        raise RuntimeError(
            f"locust wrote no stats (exit {completed.returncode}):\n{completed.stderr}"
        )
    locust_cpu = (children_after.ru_utime + children_after.ru_stime) - (
        children_before.ru_utime + children_before.ru_stime
    )
    return {
        "endpoints": read_locust_stats(stats_path),
        "api_cpu_s": round(cpu_seconds(pid) - api_before, 1),
        "locust_cpu_s": round(locust_cpu, 1),
        "locust_exit": completed.returncode,
    }


# -- summary ---------------------------------------------------------------------------------


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per database, mode and endpoint: medians and min-max of rps, p50 and p99 over repeats."""
    summary: dict[str, Any] = {}
    for run in runs:
        for endpoint, stats in run["endpoints"].items():
            key = summary.setdefault(run["database"], {}).setdefault(run["mode"], {})
            key.setdefault(endpoint, []).append(stats)
    for modes in summary.values():
        for endpoints in modes.values():
            for endpoint, samples in endpoints.items():
                endpoints[endpoint] = {
                    metric: {
                        "median": statistics.median(s[metric] for s in samples),
                        "min_max": [
                            min(s[metric] for s in samples),
                            max(s[metric] for s in samples),
                        ],
                    }
                    for metric in ("rps", "p50_ms", "p99_ms")
                } | {"failures": sum(s["failures"] for s in samples)}
    return summary


def print_summary(summary: dict[str, Any]) -> None:
    for database, modes in summary.items():
        for mode, endpoints in modes.items():
            for endpoint, row in endpoints.items():
                print(
                    f"{database:<9}{mode:<11}{endpoint:<40} rps {row['rps']['median']:>7.1f}  "
                    f"p50 {row['p50_ms']['median']:>6.0f} ms  p99 {row['p99_ms']['median']:>6.0f} ms"
                    f"  failures {row['failures']}"
                )


def parse_args() -> argparse.Namespace:
    parser = arg_parser(__doc__)
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--trials", type=int, default=1000, help="trials per job")
    parser.add_argument("--epochs", type=int, default=20, help="epoch rows per trial")
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--duration", type=int, default=30, help="seconds per locust run")
    parser.add_argument(
        "--spawn-rate",
        type=float,
        default=None,
        help="users started per second; the stats then cover the --duration seconds after the "
        "last user started (default: every user at once, counted from the start)",
    )
    parser.add_argument(
        "--modes", nargs="+", choices=["polling", "saturation"], default=["polling", "saturation"]
    )
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--databases", nargs="+", choices=["sqlite", "postgres"], default=["sqlite", "postgres"]
    )
    parser.add_argument("--api-key", default=os.environ.get("HPSEARCH_API_KEY"))
    parser.add_argument(
        "--oracle-state",
        choices=["kept", "omitted"],
        default="kept",
        help="store each job's oracle state as the service does (kept), or leave it null to "
        "see what it costs the status polls (omitted)",
    )
    parser.add_argument("--result", default="api_load", help="result file name (no .json)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    runs: list[dict[str, Any]] = []
    seeding: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="hpsearch-bench-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        clients: dict[str, ApiClient] = {}
        for database in args.databases:
            env = database_env(database, root, stack)
            seeding[database] = seed_database(env, args)
            print(database, "seeded in", seeding[database]["seed_s"], "s", flush=True)
            client = stack.enter_context(running_service(env, 0, root / f"logs-{database}"))
            if args.api_key:
                client = stack.enter_context(ApiClient(client.base_url, api_key=args.api_key))
            warm_up(client, seeding[database]["job_ids"])
            clients[database] = client
        for repeat in range(args.repeats):
            databases = args.databases if repeat % 2 == 0 else args.databases[::-1]
            for database in databases:
                modes = args.modes if repeat % 2 == 0 else args.modes[::-1]
                for mode in modes:
                    out = root / f"locust-{database}-{mode}-{repeat}"
                    job_ids = seeding[database]["job_ids"]
                    run = run_locust(clients[database].base_url, job_ids, MODES[mode], args, out)
                    run.update(database=database, mode=mode, repeat=repeat)
                    print(run, flush=True)
                    runs.append(run)
    summary = summarize(runs)
    print_summary(summary)
    path = write_result(
        args.result,
        {
            "benchmark": "API under load: locust users polling job status and leaderboards",
            "load_tool": "locust (FastHttpUser), on the same machine as the server",
            "versions": {name: metadata.version(name) for name in SERVING_PACKAGES},
            "jobs": args.jobs,
            "trials_per_job": args.trials,
            "epochs_per_trial": args.epochs,
            "users": args.users,
            "duration_s": args.duration,
            "spawn": (
                f"{args.spawn_rate} users/s, stats reset once all run"
                if args.spawn_rate
                else "all users at once, stats from the start"
            ),
            "repeats": args.repeats,
            "modes": {"polling": "think time 0.5-1.5 s", "saturation": "no think time"},
            "target": {"endpoint": STATUS_ENDPOINT, "mode": "polling", "p99_ms_below": 50},
            "oracle_state": args.oracle_state,
            "seeding": {
                db: {k: v for k, v in s.items() if k != "job_ids"} for db, s in seeding.items()
            },
            "summary": summary,
            "runs": runs,
        },
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
