"""Worker memory: resident memory of one worker after 10, 50 and 100 small trials.

    .venv/bin/python -m bench.worker_memory [--trials 100] [--repeats 1]

One worker (``--concurrency 1``) on the embedded defaults runs a random search of small trials
on scikit-learn's digits, twice: with process recycling as configured by default
(``HPSEARCH_WORKER_MAX_TASKS_PER_CHILD``, 1,000 tasks, and a 3 GB memory bound: no recycling in
100 trials) and with a process recycled every 50 tasks (the default until each trial's graphs
were freed, ``worker.training.gradient_registry``). While the job runs, the Celery main
process's and its pool child's resident memory (``VmRSS`` of ``/proc/<pid>/status``) are sampled
every 0.2 s with the count of finished trials read over the API. Reports, at 10, 50 and 100
finished trials, the first sample at or past that count and the child's peak up to it, the pool
children seen (recycles) and the job's wall time. Repetitions alternate the order of the two
settings. Writes ``bench/results/worker_memory.json``.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from api.cli.console import trials_done
from api.client import ApiClient
from bench.common import arg_parser, running_service, write_result
from db.settings import Settings

CHECKPOINTS = (10, 50, 100)
DEFAULT_RECYCLE = Settings.model_fields["worker_max_tasks_per_child"].default
SETTINGS = {"recycle_default": DEFAULT_RECYCLE, "recycle_every_50": 50}
SAMPLE_EVERY_S = 0.2


def memory_spec(trials: int) -> dict[str, Any]:
    """Small, quick trials of varied size (as in tests/faults/test_memory.py)."""
    return {
        "name": f"bench-memory-{trials}",
        "dataset": {"name": "digits", "max_rows": 300, "split_seed": 1},
        "model": {"depth": 1, "units": {"type": "int", "min": 4, "max": 400}},
        "optimizer": {"learning_rate": {"type": "float", "min": 1e-3, "max": 1e-2}},
        "training": {"epochs": 2, "batch_size": 32, "early_stopping": {"enabled": False}},
        "search": {"algorithm": "random", "max_trials": trials, "seed": 1},
    }


# -- /proc -----------------------------------------------------------------------------------


def ppid_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def children_of(parent: int) -> list[int]:
    return sorted(
        int(p.name) for p in Path("/proc").glob("[0-9]*") if ppid_of(int(p.name)) == parent
    )


def rss_mb(pid: int) -> float | None:
    """``VmRSS`` of ``pid`` in MB, or None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def worker_main_pid() -> int:
    """The Celery worker started by this process (``hpsearch worker`` execs celery)."""
    for pid in children_of(os.getpid()):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"celery" in argv and b"worker" in argv:
            return pid
    raise RuntimeError("no Celery worker among this process's children")


def sample(main_pid: int, finished: int, started: float) -> dict[str, Any]:
    """One reading: finished trials, main and pool child RSS."""
    child = next(iter(children_of(main_pid)), None)
    return {
        "t_s": round(time.perf_counter() - started, 2),
        "finished": finished,
        "main_rss_mb": rss_mb(main_pid),
        "child_pid": child,
        "child_rss_mb": rss_mb(child) if child else None,
    }


# -- one run ---------------------------------------------------------------------------------


def finished_trials(job: dict[str, Any]) -> int:
    return trials_done(job)


def watch(client: ApiClient, job_id: str, main_pid: int, timeout: float) -> tuple[dict, list]:
    """Poll the job and sample memory until it ends (plus one last sample); returns both."""
    started = time.perf_counter()
    samples = []
    while True:
        job = client.job(job_id)
        samples.append(sample(main_pid, finished_trials(job), started))
        if job["status"] in ("succeeded", "failed", "cancelled"):
            break
        if time.perf_counter() - started > timeout:
            raise TimeoutError(f"job {job_id} still {job['status']} after {timeout}s")
        time.sleep(SAMPLE_EVERY_S)
    time.sleep(1.0)
    samples.append(sample(main_pid, finished_trials(job), started))
    return job, samples


def checkpoint(samples: list[dict[str, Any]], count: int) -> dict[str, Any] | None:
    """The first sample at or past ``count`` finished trials, and the child's peak up to it."""
    at = next((s for s in samples if s["finished"] >= count and s["child_rss_mb"]), None)
    if at is None:
        return None
    before = [s["child_rss_mb"] for s in samples if s["t_s"] <= at["t_s"] and s["child_rss_mb"]]
    return {
        "finished": at["finished"],
        "main_rss_mb": round(at["main_rss_mb"], 1),
        "child_rss_mb": round(at["child_rss_mb"], 1),
        "child_peak_rss_mb": round(max(before), 1),
        "child_pid": at["child_pid"],
    }


def measure(setting: str, trials: int, root: Path) -> dict[str, Any]:
    """One job of ``trials`` trials on a fresh service with ``setting``'s recycling."""
    env = {
        "HPSEARCH_DATA_DIR": str(root / "data"),
        "HPSEARCH_WORKER_MAX_TASKS_PER_CHILD": str(SETTINGS[setting]),
    }
    with running_service(env, workers=1, log_dir=root / "logs") as client:
        main_pid = worker_main_pid()
        started = time.perf_counter()
        job_id = client.submit(memory_spec(trials))["id"]
        job, samples = watch(client, job_id, main_pid, timeout=3600)
        wall = time.perf_counter() - started
    children = list(dict.fromkeys(s["child_pid"] for s in samples if s["child_pid"]))
    return {
        "setting": setting,
        "max_tasks_per_child": SETTINGS[setting],
        "status": job["status"],
        "finished_trials": finished_trials(job),
        "wall_s": round(wall, 1),
        "pool_children_seen": len(children),
        "checkpoints": {str(n): checkpoint(samples, n) for n in CHECKPOINTS if n <= trials},
        "samples": samples,
    }


# -- summary ---------------------------------------------------------------------------------


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per setting and checkpoint: medians (and min-max) of child and main RSS over repeats."""
    summary: dict[str, Any] = {}
    for setting in SETTINGS:
        mine = [r for r in runs if r["setting"] == setting]
        row: dict[str, Any] = {"median_wall_s": statistics.median(r["wall_s"] for r in mine)}
        for count in CHECKPOINTS:
            points = [r["checkpoints"].get(str(count)) for r in mine]
            points = [p for p in points if p]
            if not points:
                continue
            row[str(count)] = {
                key: {
                    "median": round(statistics.median(p[key] for p in points), 1),
                    "min_max": [min(p[key] for p in points), max(p[key] for p in points)],
                }
                for key in ("child_rss_mb", "child_peak_rss_mb", "main_rss_mb")
            }
        row["pool_children_seen"] = [r["pool_children_seen"] for r in mine]
        summary[setting] = row
    return summary


def print_summary(summary: dict[str, Any]) -> None:
    for setting, row in summary.items():
        cells = [
            f"{n}: child {row[str(n)]['child_rss_mb']['median']:.0f} MB "
            f"(peak {row[str(n)]['child_peak_rss_mb']['median']:.0f}), "
            f"main {row[str(n)]['main_rss_mb']['median']:.0f} MB"
            for n in CHECKPOINTS
            if str(n) in row
        ]
        print(f"{setting:<16}", " | ".join(cells), f"| wall {row['median_wall_s']:.0f} s")


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    runs: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        order = list(SETTINGS) if repeat % 2 == 0 else list(SETTINGS)[::-1]
        for setting in order:
            with tempfile.TemporaryDirectory(prefix="hpsearch-bench-") as tmp:
                run = measure(setting, args.trials, Path(tmp))
            run["repeat"] = repeat
            print({k: v for k, v in run.items() if k != "samples"}, flush=True)
            runs.append(run)
    summary = summarize(runs)
    print_summary(summary)
    path = write_result(
        "worker_memory",
        {
            "benchmark": "one worker's resident memory after N small digits trials, "
            "default recycling vs every 50 tasks",
            "setup": "embedded defaults (SQLite + SQLAlchemy broker), one worker, --concurrency 1",
            "spec": memory_spec(args.trials),
            "trials": args.trials,
            "repeats": args.repeats,
            "summary": summary,
            "runs": runs,
        },
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
