"""Shared helpers of the benchmarks: machine facts, fresh databases, the service's processes.

Benchmarks are not tests: they measure, write JSON under ``bench/results/`` and never assert a
timing. Run each from the repository root with the project's virtualenv.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from api.cli.demo import api_process, child_process, free_port, wait_until_healthy
from api.client import ApiClient

RESULTS_DIR = Path(__file__).resolve().parent / "results"
POSTGRES_ADMIN_URL = os.environ.get(
    "HPSEARCH_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("HPSEARCH_BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")


def arg_parser(doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's command-line parser, its module docstring as the help text."""
    return argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    packages = ["tensorflow-cpu", "tensorflow", "keras", "keras-tuner", "celery", "sqlalchemy"]
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write ``bench/results/<name>.json`` (with the machine facts) and return its path."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2) + "\n")
    return path


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped afterwards."""
    name = f"hpsearch_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def stamp(value: str) -> datetime:
    """A timestamp as the API writes it."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@contextmanager
def distributed_service(
    workers: int, data_dir: Path, log_dir: Path
) -> Iterator[tuple[ApiClient, str]]:
    """The distributed setup from scratch: Redis flushed, a fresh PostgreSQL database, the API
    and ``workers`` single-process workers of one TensorFlow thread; yields the client and the
    database's URL."""
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    with fresh_postgres_database() as database_url:
        env = {
            "HPSEARCH_DATABASE_URL": database_url,
            "HPSEARCH_BROKER_URL": REDIS_URL,
            "HPSEARCH_DATA_DIR": str(data_dir),
            "HPSEARCH_TF_THREADS": "1",
        }
        with running_service(env, workers, log_dir) as client:
            yield client, database_url


@contextmanager
def running_service(env: dict[str, str], workers: int, log_dir: Path) -> Iterator[ApiClient]:
    """Migrate, then run the API and ``workers`` single-process workers with ``env`` applied."""
    log_dir.mkdir(parents=True, exist_ok=True)
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        with ExitStack() as stack:
            stack.enter_context(child_process("migrate", ["migrate"], log_dir)).wait()
            port = free_port()
            processes = {"api": stack.enter_context(api_process(port, log_dir))}
            for index in range(workers):
                processes[f"worker{index}"] = stack.enter_context(
                    child_process(f"worker{index}", ["worker", "--concurrency", "1"], log_dir)
                )
            client = stack.enter_context(ApiClient(f"http://127.0.0.1:{port}"))
            wait_until_healthy(client, processes, log_dir, timeout=120)
            yield client
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_job(
    client: ApiClient, spec: dict[str, Any], timeout: float = 3600
) -> tuple[dict[str, Any], float]:
    """Submit ``spec``, poll until it is final; returns the job and the wall time in seconds."""
    started = time.perf_counter()
    job_id = client.submit(spec)["id"]
    deadline = time.monotonic() + timeout
    while True:
        job = client.job(job_id)
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job, time.perf_counter() - started
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still {job['status']} after {timeout}s")
        time.sleep(0.2)
