"""What a big running job's page builds do to everyone else's requests: built in the API's own
request threads, or in the page-building process beside it (``HPSEARCH_DASHBOARD_BUILD_PROCESS``).

    .venv/bin/python -m bench.page_build_contention [--trials 1000] [--move-s 0.5]
        [--pollers 5] [--poll-s 0.2] [--duration 45] [--repeats 2] [--result page_build_contention]

One job of ``--trials`` simulated trials with every epoch (``bench/dashboard_seed.py``), marked
running, in a fresh SQLite database. The API (``hpsearch serve``, open mode) is started once per
mode and run: its version moves every ``--move-s`` (the last trial's end time is nudged, as a
trial's end moves it), one dashboard viewer follows the job's stream (so the page is built again
at each move) and fetches the data it is told about, and ``--pollers`` clients each ask the job's
status every ``--poll-s``. Reports the status polls as the API timed them (its histogram: how many
took over 25, 50 and 100 ms) and as the clients saw them, the page's build time alone, and the
CPU seconds of the API process and of its page builder; modes alternate over ``--repeats``.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.api_load import api_pid, applied_env, cpu_seconds
from bench.common import arg_parser, running_service, write_result
from bench.dashboard_load import code_state
from bench.dashboard_seed import insert_hpsearch_job, simulate
from bench.server_latency import STATUS_ROUTE, route_buckets, tail

MODES = {"thread": "0", "process": "1"}


def seed_running_job(url: str, trials: int) -> str:
    """A job of ``trials`` simulated trials, running (its page changes until it ends)."""
    from db.engine import session_scope
    from db.migrate import upgrade
    from db.models import Job, JobStatus

    upgrade(url)
    job_id = insert_hpsearch_job(url, simulate(trials, seed=trials))
    with session_scope(url) as session:
        job = session.get(Job, job_id)
        job.status, job.finished_at = JobStatus.RUNNING, None
    return job_id


def move_version(url: str, job_id: str) -> None:
    """Nudge the job's last trial's end by a millisecond: the job's version moves."""
    from sqlalchemy import select

    from db.engine import session_scope
    from db.models import Trial

    with session_scope(url) as session:
        trial = session.scalars(
            select(Trial).where(Trial.job_id == job_id).order_by(Trial.number.desc()).limit(1)
        ).one()
        trial.finished_at = trial.finished_at + timedelta(milliseconds=1)


def build_ms(base_url: str, url: str, job_id: str, count: int = 8) -> float:
    """The page's data asked right after each move (built for that request), median ms."""
    times = []
    with httpx.Client(base_url=base_url, timeout=60) as http:
        for _ in range(count):
            move_version(url, job_id)
            time.sleep(0.6)  # past the version's TTL
            started = time.perf_counter()
            http.get(f"/ui/data/jobs/{job_id}").raise_for_status()
            times.append(1000 * (time.perf_counter() - started))
    return round(statistics.median(times), 1)


def spawned_children(pid: int) -> list[int]:
    """The processes ``pid`` spawned with multiprocessing (its page builder), not the resource
    tracker."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if parent == pid and b"spawn_main" in argv:
            found.append(int(entry.name))
    return found


def run_load(base_url: str, url: str, job_id: str, args: Any) -> dict[str, Any]:
    """``args.duration`` seconds of moves, one stream viewer and the status pollers."""
    stop = threading.Event()
    latencies: list[float] = []
    events = [0]

    def poller() -> None:
        with httpx.Client(base_url=base_url, timeout=30) as http:
            while not stop.is_set():
                started = time.perf_counter()
                http.get(f"/api/v1/jobs/{job_id}").raise_for_status()
                latencies.append(1000 * (time.perf_counter() - started))
                time.sleep(args.poll_s)

    def viewer() -> None:
        with httpx.Client(base_url=base_url, timeout=60) as http:
            while not stop.is_set():
                try:
                    with http.stream("GET", f"/ui/data/jobs/{job_id}/stream") as stream:
                        for line in stream.iter_lines():
                            if stop.is_set():
                                return
                            if line.startswith("id: "):
                                events[0] += 1
                                http.get(f"/ui/data/jobs/{job_id}?v={line[4:]}")
                except httpx.HTTPError:  # the service stopping under an open stream
                    return

    def mover() -> None:
        while not stop.wait(args.move_s):
            move_version(url, job_id)

    threads = [threading.Thread(target=f, daemon=True) for f in (viewer, mover)]
    threads += [threading.Thread(target=poller, daemon=True) for _ in range(args.pollers)]
    pid = api_pid(int(base_url.rsplit(":", 1)[1]))
    children = spawned_children(pid)
    cpu_before, server_before = cpu_seconds(pid), route_buckets(base_url, STATUS_ROUTE)
    children_before = sum(cpu_seconds(child) for child in children)
    for thread in threads:
        thread.start()
    time.sleep(args.duration)
    stop.set()
    server = tail(server_before, route_buckets(base_url, STATUS_ROUTE))
    ordered = sorted(latencies)
    return {
        "server_status": server,
        "client_status_ms": {
            "requests": len(ordered),
            "p50": round(ordered[len(ordered) // 2], 1),
            "p99": round(ordered[int(len(ordered) * 0.99)], 1),
            "max": round(ordered[-1], 1),
        },
        "versions_pushed": events[0],
        "api_cpu_s": round(cpu_seconds(pid) - cpu_before, 1),
        # the page builder's (moved out of the API, not saved)
        "builder_cpu_s": round(sum(cpu_seconds(c) for c in children) - children_before, 1),
    }


def parse_args() -> Any:
    parser = arg_parser(__doc__)
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--move-s", type=float, default=0.5, help="seconds between moves")
    parser.add_argument("--pollers", type=int, default=5)
    parser.add_argument("--poll-s", type=float, default=0.2, help="a poller's pause")
    parser.add_argument("--duration", type=float, default=45.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--result", default="page_build_contention")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="hpsearch-bench-") as tmp:
        root = Path(tmp)
        url = f"sqlite:///{root / 'hpsearch.db'}"
        env = {
            "HPSEARCH_DATABASE_URL": url,
            "HPSEARCH_DATA_DIR": str(root / "data"),
            "HPSEARCH_AUTH_MODE": "open",
            "HPSEARCH_LOG_LEVEL": "WARNING",
            "HPSEARCH_PREWARM_PREDICTOR": "false",
        }
        with applied_env(env):
            job_id = seed_running_job(url, args.trials)
        print(f"seeded a running job of {args.trials} trials", flush=True)
        for repeat in range(args.repeats):
            order = list(MODES) if repeat % 2 == 0 else list(MODES)[::-1]
            for mode in order:
                mode_env = {**env, "HPSEARCH_DASHBOARD_BUILD_PROCESS": MODES[mode]}
                with ExitStack() as stack:
                    client = stack.enter_context(
                        running_service(mode_env, 0, root / "logs" / f"{mode}-{repeat}")
                    )
                    with applied_env(mode_env):
                        alone_ms = build_ms(client.base_url, url, job_id)
                        run = run_load(client.base_url, url, job_id, args)
                run.update(mode=mode, repeat=repeat, build_ms_alone=alone_ms)
                print(
                    f"{mode:<8} repeat {repeat}: build {alone_ms} ms alone; status (client) "
                    f"{run['client_status_ms']}; server {run['server_status']}; "
                    f"API CPU {run['api_cpu_s']} s, builder {run['builder_cpu_s']} s; "
                    f"{run['versions_pushed']} versions pushed",
                    flush=True,
                )
                runs.append(run)
    path = write_result(
        args.result,
        {
            "benchmark": "status polls beside a running job's page builds: in the API's "
            "threads or in the page-building process",
            "code": code_state(),
            "cpu_count": os.cpu_count(),
            "database": "sqlite",
            "trials": args.trials,
            "move_s": args.move_s,
            "pollers": args.pollers,
            "poll_s": args.poll_s,
            "duration_s": args.duration,
            "runs": runs,
        },
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
