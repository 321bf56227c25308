"""One 20-trial job with 1 and then 2 worker processes (one TensorFlow thread each).

    .venv/bin/python -m bench.worker_scaling [--trials 20] [--repeats 3]

Runs on PostgreSQL + Redis (the distributed setup; the embedded SQLite default supports one
worker). Each repetition alternates the order (1 then 2, then 2 then 1...) and uses a fresh
database; the timed job starts once every worker has trained a trial of a small warm-up job
(a cluster that is already up). Writes ``bench/results/worker_scaling.json`` with every run, the
medians, the ratio median(2 workers) / median(1 worker) and that ratio within each repetition.
Target (issue 3): at most 0.6. It also measures the same ratio for bare Keras fits in two
processes, no service at all, fed by Keras's own input pipeline and by the worker's.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from bench.bare_fits import PIPELINES
from bench.common import arg_parser, distributed_service, run_job, write_result


def scaling_spec(trials: int, seed: int) -> dict[str, Any]:
    """A random search on digits whose trials are dominated by model.fit (as real ones are)."""
    return {
        "name": f"bench-scaling-{trials}",
        "dataset": {"name": "digits", "split_seed": 0},
        "model": {
            "depth": {"type": "int", "min": 1, "max": 3},
            "units": {"type": "int", "min": 32, "max": 128, "step": 32},
            "activation": {"type": "choice", "values": ["relu", "elu", "selu"]},
            "kernel_initializer": "auto",
        },
        "optimizer": {
            "name": "adam",
            "learning_rate": {"type": "float", "min": 1e-4, "max": 1e-2, "sampling": "log"},
        },
        "training": {"epochs": 8, "batch_size": 32, "early_stopping": {"enabled": False}},
        "search": {"algorithm": "random", "max_trials": trials, "seed": seed},
    }


#: four trials (a searched parameter: a fixed spec would be one), so that a worker busy with
#: the job's dispatch does not always leave its trials to the other one
WARM_UP_SPEC = {
    "dataset": {"name": "iris"},
    "model": {"units": {"type": "choice", "values": [4, 8]}},
    "training": {"epochs": 1},
    "search": {"max_trials": 4},
}
#: how long the workers have to take a warm-up trial each (a pool process imports TensorFlow
#: first: seconds, while another worker may run a warm-up job's trials in well under one)
WARM_UP_TIMEOUT_S = 180.0


def warm_up(client: Any, database_url: str, workers: int) -> int:
    """Run small jobs until each of the ``workers`` worker processes has trained a trial, so the
    timed job starts on workers that are up (TensorFlow loaded in their pool processes), as on a
    running cluster; returns how many warm-up jobs it took."""
    engine = create_engine(database_url)
    deadline = time.monotonic() + WARM_UP_TIMEOUT_S
    jobs, seen = 0, set()
    try:
        while time.monotonic() < deadline:
            jobs += 1
            run_job(client, WARM_UP_SPEC)
            with engine.connect() as connection:
                claims = connection.execute(text("SELECT DISTINCT worker FROM trials"))
                # ``host:main_pid:child_pid``: one main process per worker.
                seen = {worker.split(":")[1] for (worker,) in claims if worker}
            if len(seen) >= workers:
                return jobs
    finally:
        engine.dispose()
    raise RuntimeError(
        f"only {len(seen)} of {workers} workers took a trial in {jobs} warm-up jobs "
        f"({WARM_UP_TIMEOUT_S:.0f} s)"
    )


def measure(workers: int, trials: int, seed: int, log_root: Path) -> dict[str, Any]:
    log_dir = log_root / f"workers{workers}-seed{seed}"
    with distributed_service(workers, log_root / "data", log_dir) as (client, database_url):
        warm_up_jobs = warm_up(client, database_url, workers)
        job, wall_s = run_job(client, scaling_spec(trials, seed))
        trials_page = client.trials(job["id"], limit=100)
    durations = [t["timings"]["duration_s"] or 0.0 for t in trials_page["items"]]
    return {
        "workers": workers,
        "seed": seed,
        "status": job["status"],
        "trials": trials_page["total"],
        "wall_s": round(wall_s, 3),
        "trial_seconds_sum": round(sum(durations), 3),
        "best_score": job["best_score"],
        "warm_up_jobs": warm_up_jobs,
    }


def bare_parallel_ratio(pipeline: str, fits: int = 10) -> dict[str, float]:
    """No service at all: ``fits`` bare Keras fits in one process, then half of them in each of
    two processes at once, fed by ``pipeline`` (see ``bench.bare_fits``); the ratio of the
    fitting times (1.0 = no gain, 0.5 = perfect)."""

    def launch(n: int) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "bench.bare_fits", str(n), pipeline],
            stdout=subprocess.PIPE,
            text=True,
        )

    sequential = float(launch(fits).communicate()[0])
    pair = [launch(fits // 2), launch(fits // 2)]
    parallel = max(float(p.communicate()[0]) for p in pair)
    return {
        "sequential_s": sequential,
        "parallel_s": parallel,
        "ratio": round(parallel / sequential, 3),
    }


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hpsearch-bench-") as tmp:
        for repeat in range(args.repeats):
            order = (1, 2) if repeat % 2 == 0 else (2, 1)
            for workers in order:
                run = measure(workers, args.trials, seed=repeat, log_root=Path(tmp))
                print(run, flush=True)
                runs.append(run)
    medians = {
        w: statistics.median(
            r["wall_s"] for r in runs if r["workers"] == w and r["status"] == "succeeded"
        )
        for w in (1, 2)
    }
    spreads = {
        w: [
            min(r["wall_s"] for r in runs if r["workers"] == w),
            max(r["wall_s"] for r in runs if r["workers"] == w),
        ]
        for w in (1, 2)
    }
    ratio = medians[2] / medians[1]
    # The 1- and 2-worker runs of one repetition ran back to back: their ratio is the least
    # exposed to the host's speed drifting over the whole benchmark.
    pair_ratios = [
        round(two["wall_s"] / one["wall_s"], 3)
        for one in runs
        if one["workers"] == 1
        for two in runs
        if two["workers"] == 2 and two["seed"] == one["seed"]
    ]
    bare = {
        pipeline: [bare_parallel_ratio(pipeline) for _ in range(args.repeats)]
        for pipeline in PIPELINES
    }
    bare_ratios = {p: statistics.median(c["ratio"] for c in runs) for p, runs in bare.items()}
    path = write_result(
        "worker_scaling",
        {
            "benchmark": "one job of N trials, 1 vs 2 worker processes, PostgreSQL + Redis",
            "trials": args.trials,
            "repeats": args.repeats,
            "runs": runs,
            "median_wall_s": medians,
            "min_max_wall_s": spreads,
            "ratio_2_over_1": round(ratio, 3),
            "ratio_2_over_1_per_repetition": pair_ratios,
            "target_ratio": 0.6,
            "bare_keras_two_processes": bare,
            "bare_keras_two_processes_median_ratio": bare_ratios,
        },
    )
    print(
        f"ratio 2/1 workers: {ratio:.3f} (target <= 0.6); bare Keras in 2 processes: {bare_ratios}"
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
