"""``hpsearch demo``: the whole service on the embedded defaults, in one command.

Migrates the SQLite database, starts ``hpsearch serve`` and ``hpsearch worker`` as child
processes (the same commands a deployment runs), submits an example search, shows its progress,
prints the leaderboard and saves the best model. Nothing here loads TensorFlow: the worker does.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

from api.cli.console import print_leaderboard, print_warnings, watch_job
from api.client import ApiClient
from db.migrate import upgrade
from db.settings import get_settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def child_process(name: str, args: list[str], log_dir: Path):  # type: ignore[no-untyped-def]
    """Run ``python -m api.cli ARGS`` in its own process group; stop it (warm, then cold) on exit."""
    log_path = log_dir / f"{name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        stop_group(process)


def api_process(port: int, log_dir: Path):  # type: ignore[no-untyped-def]
    """``hpsearch serve`` on ``port`` (already migrated, logging warnings only) as a
    ``child_process`` named ``api``."""
    args = ["serve", "--port", str(port), "--no-migrate", "--log-level", "warning"]
    return child_process("api", args, log_dir)


def stop_group(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Stop a process leading its own group: SIGTERM to the group, SIGKILL if it outlives
    ``timeout``."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until_healthy(
    client: ApiClient, processes: dict[str, subprocess.Popen[bytes]], log_dir: Path, timeout: float
) -> None:
    """Poll /health until it answers 200; fail early if a child process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, process in processes.items():
            if process.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with code {process.returncode}; see {log_dir / name}.log"
                )
        try:
            client.health()
            return
        except Exception:  # not up yet (connection refused, 503 while starting)
            time.sleep(0.5)
    raise TimeoutError(f"the API did not become healthy in {timeout:.0f}s; see {log_dir}")


def run_demo(
    spec: dict[str, Any],
    port: int | None = None,
    keep_running: bool = False,
    console: Console | None = None,
    api_key: str | None = None,
) -> dict[str, Any]:
    """Start API + worker, run ``spec`` to the end, report; returns the final job. ``api_key``
    is sent with every request (needed when ``HPSEARCH_AUTH_MODE`` is ``keys``)."""
    out = console or Console()
    settings = get_settings()
    settings.ensure_data_dir()
    log_dir = settings.data_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    upgrade()
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    out.print(f"database: {settings.resolved_database_url()}")
    out.print(f"broker:   {settings.resolved_broker_url()}")
    out.print(f"logs:     {log_dir}")
    with ExitStack() as stack:
        processes = {
            "api": stack.enter_context(api_process(port, log_dir)),
            "worker": stack.enter_context(
                child_process("worker", ["worker", "--concurrency", "1"], log_dir)
            ),
        }
        client = stack.enter_context(ApiClient(url, api_key=api_key))
        wait_until_healthy(client, processes, log_dir, timeout=120)
        out.print(f"API up at {url} (docs: {url}/docs); one worker process\n")

        submitted = client.submit(spec)
        job_id = submitted["id"]
        out.print(f"submitted job [bold]{job_id}[/] ({spec.get('name', 'unnamed')})")
        out.print(f"watch it in a browser: [bold]{url}/jobs/{job_id}[/]")
        print_warnings(submitted.get("warnings", []), out)
        job = watch_job(client, job_id, out)
        out.print()
        print_leaderboard(client, job_id, out)
        if job["status"] == "succeeded":
            model_path = (settings.data_dir / "models" / f"{job_id}-best.keras").resolve()
            model_path.parent.mkdir(exist_ok=True)
            client.download_model(job_id, model_path)
            out.print(
                f"\nbest model (trial {job['best_trial_number']}, {job['objective']} = "
                f"{job['best_score']:.4f}) saved to [bold]{model_path}[/]"
            )
        else:
            out.print(f"\n[red]job ended {job['status']}[/]: {job.get('error')}")
        if not keep_running:
            out.print("(run [bold]hpsearch demo --keep-running[/] to keep the dashboard up)")
        if keep_running:
            out.print(
                f"\ndashboard at [bold]{url}/jobs/{job_id}[/] (all jobs: {url}/; API: {url}/docs); "
                "Ctrl-C to stop"
            )
            try:
                while all(p.poll() is None for p in processes.values()):
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
        return job
