"""Dashboard viewers of running jobs beside the status pollers: does the status poll's p99 stay
under 50 ms with 50 browser tabs open on running jobs' pages?

    .venv/bin/python -m bench.dashboard_viewers [--jobs 5] [--pollers 50] [--viewers 50 ...]
        [--viewer-mode data|page|version|stream] [--duration 30] [--spawn-rate 10] [--repeats 2]
        [--processes 4] [--trial-s 2] [--epochs 20] [--warm-up 120] [--database sqlite|postgres]
        [--result dashboard_viewers]

A fresh service (the embedded SQLite default, or PostgreSQL + Redis with ``--database
postgres``; the API, ``hpsearch serve``, in open auth mode) runs ``--jobs`` random searches
(``bench/dashboard_seed.py``'s dense-net space, on digits) on one Celery worker of the benchmark's
stub trainer (``bench/stub_worker.py``, ``--processes`` pool processes): each trial records
``--epochs`` epochs of loss, accuracy, val_loss and val_accuracy over ``--trial-s`` seconds
through the service's own claim, lease, epoch record and result, so every job has trials
starting and ending about every second, and epochs recorded all the time, as a running job does. After ``--warm-up`` seconds (the jobs gather
trials), locust (``bench/locust_dashboard.py``, headless, on the same machine) runs, in one run
and alternating the order over ``--repeats``:

- **without viewers**: ``--pollers`` clients of ``bench/locustfile.py`` polling status and
  leaderboards (think time 0.5-1.5 s), as ``bench/api_load.py`` measures them;
- **with viewers**: the same pollers plus ``--viewers`` dashboard viewers (one run per count
  given; ``bench/locust_dashboard.py``), each loading a job's page, its assets and data once,
  then, by ``--viewer-mode``:

  - ``data`` (default): asking for the data's version a second after each answer and fetching
    the data again whenever it moved;
  - ``page``: the same, and with each new version also the best trials' curves and (when the
    completed count moved) the importance, as the page's script does;
  - ``version``: a diagnostic: only the version polls, never the data again;
  - ``stream``: what the page does now: the job page's server-sent events instead of polls,
    each telling a new version, and then the page's data (gzipped; importance included), and
    the best trials' curves when the best trials changed.

Users start at ``--spawn-rate`` per second; locust resets its statistics once all run and
counts ``--duration`` seconds. Reports the status poll's (``GET /api/v1/jobs/{id}``) p50 and
p99 with and without the viewers (medians and min-max over the repetitions), every endpoint's
figures, the API's CPU seconds and the jobs' progress, into ``bench/results/
dashboard_viewers.json``, with each endpoint's cost asked alone (one request at a time, after the
warm-up and at the end). Target: status-poll p99 under 50 ms with 50 viewers.
"""

from __future__ import annotations

import csv
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

from api.cli.demo import stop_group
from api.client import ApiClient
from bench.api_load import api_pid, cpu_seconds, database_env
from bench.common import arg_parser, running_service, write_result
from bench.dashboard_load import code_state, pages_ready
from bench.dashboard_seed import dense_net_spec
from bench.server_latency import STATUS_ROUTE, route_buckets, tail

LOCUSTFILE = Path(__file__).resolve().parent / "locust_dashboard.py"
STATUS_ENDPOINT = "GET /jobs/{id}"


def condition(viewers: int) -> str:
    """A run's label: how many viewers ran beside the pollers."""
    return "without viewers" if viewers == 0 else f"{viewers} viewers"


_POLLING = "the page, its assets and its data once, then the version 1 s after each answer"
#: what a viewer does, per ``--viewer-mode``
VIEWER_MODES = {
    "data": f"{_POLLING}, the data again whenever the version moved",
    "page": f"{_POLLING}; whenever it moved, the data, the best trials' curves and (when the "
    "completed count moved) the importance, as the page's script does",
    "version": f"{_POLLING}, never the data again (a diagnostic: the version polls alone)",
    "stream": "the page, its assets and its data once, then the job's server-sent events (a "
    "reconnection every ~25 s); at each new version the page's data (gzipped, importance "
    "included) and, when the best trials changed, their curves, as the page's script does",
}
PACKAGES = ("locust", "fastapi", "uvicorn", "sqlalchemy", "celery")


def start_stub_worker(processes: int, log_dir: Path) -> subprocess.Popen[bytes]:
    """One Celery worker of the stub trainer with ``processes`` pool processes (its own process
    group; the environment is this process's)."""
    command = [
        *(sys.executable, "-m", "celery", "-A", "bench.stub_worker:app", "worker"),
        *("--concurrency", str(processes), "--loglevel", "WARNING", "--queues", "hpsearch"),
        *("--pool", "prefork"),
    ]
    with (log_dir / "worker.log").open("ab") as log:
        return subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def submit_jobs(client: ApiClient, count: int, trials: int) -> list[str]:
    """``count`` random searches of the dense-net space (digits: nothing to download)."""
    ids = []
    for index in range(count):
        spec = dense_net_spec(trials)
        spec["name"] = f"running-dense-net-{index}"
        spec["dataset"] = {"name": "digits"}
        spec["search"]["seed"] = index + 1
        ids.append(client.submit(spec)["id"])
    return ids


def progress(client: ApiClient, job_ids: list[str]) -> dict[str, Any]:
    """How far the jobs are: their statuses and trials completed (sum, min, max)."""
    jobs = [client.job(job_id) for job_id in job_ids]
    done = [job["trials_completed"] for job in jobs]
    return {
        "statuses": sorted({job["status"] for job in jobs}),
        "trials_completed": {"sum": sum(done), "min": min(done), "max": max(done)},
    }


def sequential_latency(base_url: str, job_ids: list[str], count: int = 20) -> dict[str, Any]:
    """Each endpoint asked ``count`` times in a row, 0.1 s apart, with no load but the workers':
    what one request costs the API alone (the jobs' versions move between two requests, so the
    page's data is mostly built anew, not served from the API's cache)."""
    paths = {
        "status": "/api/v1/jobs/{id}",
        "version": "/ui/data/jobs/{id}/version",
        "data": "/ui/data/jobs/{id}",
    }
    out: dict[str, Any] = {}
    with httpx.Client(base_url=base_url, timeout=60) as http:
        for name, path in paths.items():
            times, sizes = [], []
            for index in range(count):
                started = time.perf_counter()
                response = http.get(path.format(id=job_ids[index % len(job_ids)]))
                times.append(1000 * (time.perf_counter() - started))
                response.raise_for_status()
                sizes.append(len(response.content))
                time.sleep(0.1)
            out[name] = {
                "median_ms": round(statistics.median(times), 1),
                "max_ms": round(max(times), 1),
                "mean_bytes": round(statistics.fmean(sizes)),
            }
    return out


def read_stats(path: Path) -> dict[str, dict[str, Any]]:
    """Per endpoint (and ``Aggregated``): requests, failures, rps, p50, p99, max (ms), mean
    response size (bytes)."""
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
                "mean_bytes": round(float(row["Average Content Size"])),
            }
    return stats


def children_cpu_seconds() -> float:
    """User + system CPU time of this process's ended children (locust, once it exits)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_locust(url: str, job_ids: list[str], viewers: int, args: Any, out: Path) -> dict[str, Any]:
    """One headless locust run: ``args.pollers`` status pollers and ``viewers`` dashboard
    viewers; the per-endpoint stats of the ``args.duration`` seconds after all started."""
    env = {
        **os.environ,
        "HPSEARCH_BENCH_JOB_IDS": ",".join(job_ids),
        "HPSEARCH_BENCH_THINK_S": "1",
        "HPSEARCH_BENCH_POLLERS": str(args.pollers),
        "HPSEARCH_BENCH_VIEWERS": str(viewers),
        "HPSEARCH_BENCH_VIEWER_MODE": args.viewer_mode,
    }
    users = args.pollers + viewers
    viewer_class = "StreamViewer" if args.viewer_mode == "stream" else "DashboardViewer"
    classes = ["StatusPoller", *([viewer_class] if viewers else [])]
    ramp_s = math.ceil(users / args.spawn_rate)
    command = [
        *(sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless"),
        *("-u", str(users), "-r", str(args.spawn_rate), "-t", f"{args.duration + ramp_s}s"),
        *("--host", url, "--csv", str(out), "--only-summary", "--loglevel", "WARNING"),
        *("--reset-stats", *classes),
    ]
    pid = api_pid(int(url.rsplit(":", 1)[1]))
    api_before, locust_before = cpu_seconds(pid), children_cpu_seconds()
    server_before = route_buckets(url, STATUS_ROUTE)
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    locust_cpu_s = children_cpu_seconds() - locust_before
    server_status = tail(server_before, route_buckets(url, STATUS_ROUTE))
    stats_path = out.parent / f"{out.name}_stats.csv"
    if not stats_path.exists():
        raise RuntimeError(
            f"locust wrote no stats (exit {completed.returncode}):\n{completed.stderr}"
        )
    failures_path = out.parent / f"{out.name}_failures.csv"
    failures = []
    if failures_path.exists():
        with failures_path.open() as handle:
            failures = [
                {"name": r["Name"], "error": r["Error"], "count": int(r["Occurrences"])}
                for r in csv.DictReader(handle)
            ]
    return {
        "endpoints": read_stats(stats_path),
        "failures": failures,
        "api_cpu_s": round(cpu_seconds(pid) - api_before, 1),
        # the load generator shares the API's cores: what it took from them
        "locust_cpu_s": round(locust_cpu_s, 1),
        "locust_exit": completed.returncode,
        # the status polls as the API timed them (its histogram; ramp-up included)
        "server_status": server_status,
        "users": users,
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per condition and endpoint: median and min-max of rps, p50 and p99 over the repetitions,
    and the failures."""
    summary: dict[str, Any] = {}
    for run in runs:
        for endpoint, stats in run["endpoints"].items():
            summary.setdefault(run["condition"], {}).setdefault(endpoint, []).append(stats)
    for endpoints in summary.values():
        for endpoint, samples in endpoints.items():
            endpoints[endpoint] = {
                metric: {
                    "median": statistics.median(s[metric] for s in samples),
                    "min_max": [min(s[metric] for s in samples), max(s[metric] for s in samples)],
                }
                for metric in ("rps", "p50_ms", "p99_ms", "max_ms", "mean_bytes")
            } | {"failures": sum(s["failures"] for s in samples)}
    return summary


def print_summary(summary: dict[str, Any]) -> None:
    for label, endpoints in summary.items():
        for endpoint, row in endpoints.items():
            print(
                f"{label:<16}{endpoint:<40} rps {row['rps']['median']:>7.1f}  "
                f"p50 {row['p50_ms']['median']:>6.0f} ms  p99 {row['p99_ms']['median']:>6.0f} ms "
                f"({row['p99_ms']['min_max'][0]:.0f}-{row['p99_ms']['min_max'][1]:.0f})  "
                f"{row['mean_bytes']['median'] / 1000:>8.1f} KB  failures {row['failures']}"
            )


def parse_args() -> Any:
    parser = arg_parser(__doc__)
    parser.add_argument("--jobs", type=int, default=5, help="running jobs")
    parser.add_argument("--trials", type=int, default=300, help="max_trials of each job")
    parser.add_argument("--pollers", type=int, default=50)
    parser.add_argument(
        "--viewers", type=int, nargs="+", default=[50], help="viewer counts, one run each"
    )
    parser.add_argument("--duration", type=int, default=30, help="seconds counted per run")
    parser.add_argument("--spawn-rate", type=float, default=10.0, help="users started a second")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--processes", type=int, default=4, help="the stub worker's processes")
    parser.add_argument("--trial-s", type=float, default=2.0, help="a stub trial's length")
    parser.add_argument("--epochs", type=int, default=20, help="epochs a stub trial records")
    parser.add_argument("--warm-up", type=float, default=120.0, help="seconds before measuring")
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--viewer-mode",
        choices=list(VIEWER_MODES),
        default="data",
        help="what a viewer fetches when the version moved: the data (default), everything "
        "the page's script fetches (the data, the best trials' curves, the importance), or "
        "nothing (version: a diagnostic, what the version polls alone cost); stream: the "
        "page's server-sent events instead of polls (what the page does since it has them)",
    )
    parser.add_argument("--result", default="dashboard_viewers", help="result file (no .json)")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    runs: list[dict[str, Any]] = []
    code = code_state()
    with tempfile.TemporaryDirectory(prefix="hpsearch-bench-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        (root / "timings").mkdir()
        env = {
            **database_env(args.database, root, stack),
            "HPSEARCH_AUTH_MODE": "open",
            "HPSEARCH_LOG_LEVEL": "WARNING",
            "HPSEARCH_BENCH_TIMINGS_DIR": str(root / "timings"),
            "HPSEARCH_BENCH_TRIAL_S": str(args.trial_s),
            "HPSEARCH_BENCH_EPOCHS": str(args.epochs),
            # stub trials grow no TensorFlow graphs: no recycling (each would re-import it)
            "HPSEARCH_WORKER_MAX_TASKS_PER_CHILD": "1000000",
        }
        client = stack.enter_context(running_service(env, 0, root / "logs"))
        worker = start_stub_worker(args.processes, root / "logs")  # with env applied
        stack.callback(stop_group, worker, 60)
        job_ids = submit_jobs(client, args.jobs, args.trials)
        ready = pages_ready(client.base_url, job_ids[0])
        if not (ready["page"] and ready["version"]):
            raise SystemExit(f"the service does not serve its dashboard yet: {ready}")
        print(f"{args.jobs} jobs submitted; warming up {args.warm_up:.0f} s", flush=True)
        time.sleep(args.warm_up)
        print("after the warm-up:", progress(client, job_ids), flush=True)
        alone = {"after_warm_up": sequential_latency(client.base_url, job_ids)}
        print("one request at a time:", alone["after_warm_up"], flush=True)
        for repeat in range(args.repeats):
            counts = [0, *args.viewers]
            for viewers in counts if repeat % 2 == 0 else counts[::-1]:
                before = progress(client, job_ids)
                load_average = round(os.getloadavg()[0], 2)
                out = root / f"locust-{repeat}-{viewers}"
                run = run_locust(client.base_url, job_ids, viewers, args, out)
                run.update(condition=condition(viewers), repeat=repeat, jobs_before=before)
                run["load_average_1min_before"] = load_average
                run["jobs_after"] = progress(client, job_ids)
                status = run["endpoints"].get(STATUS_ENDPOINT, {})
                print(
                    f"{condition(viewers):<16} repeat {repeat}: status p50 {status.get('p50_ms')} ms, "
                    f"p99 {status.get('p99_ms')} ms; API CPU {run['api_cpu_s']} s, "
                    f"locust CPU {run['locust_cpu_s']} s; server {run['server_status']}; "
                    f"jobs {run['jobs_after']['trials_completed']}",
                    flush=True,
                )
                runs.append(run)
        final = progress(client, job_ids)
        alone["at_end"] = sequential_latency(client.base_url, job_ids)
        print("one request at a time:", alone["at_end"], flush=True)
    summary = summarize(runs)
    print_summary(summary)
    path = write_result(
        args.result,
        {
            "benchmark": "status polls beside dashboard viewers of running jobs",
            "load_tool": "locust (FastHttpUser), on the same machine as the server",
            "versions": {name: metadata.version(name) for name in PACKAGES},
            "code": code,
            "database": args.database,
            "cpu_count": os.cpu_count(),
            "jobs": args.jobs,
            "stub_worker": {
                "processes": args.processes,
                "trial_s": args.trial_s,
                "epochs_per_trial": args.epochs,
            },
            "pollers": args.pollers,
            "viewers": args.viewers,
            "viewer": VIEWER_MODES[args.viewer_mode],
            "viewer_mode": args.viewer_mode,
            "poller": "bench/locustfile.py: status 2/4, leaderboards 2/4, think time 0.5-1.5 s",
            "duration_s": args.duration,
            "spawn": f"{args.spawn_rate} users/s, stats reset once all run",
            "repeats": args.repeats,
            "warm_up_s": args.warm_up,
            "target": {"endpoint": STATUS_ENDPOINT, "with": "50 viewers", "p99_ms_below": 50},
            "jobs_at_end": final,
            "one_request_at_a_time": alone,
            "summary": summary,
            "runs": runs,
        },
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
