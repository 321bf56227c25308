"""The commands that run the service: ``serve`` (the API under uvicorn), ``worker`` and
``flower`` (Celery, exec'd), ``migrate``."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from api.cli.common import console, err_console

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def metrics_directory(workers: int) -> Iterator[None]:
    """Several API processes count requests in one place: prometheus_client's multiprocess
    mode, in a fresh directory of their own (removed when they end) unless one is given."""
    if workers < 2 or os.environ.get(MULTIPROC_ENV):
        yield
        return
    directory = tempfile.mkdtemp(prefix="hpsearch-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield
    finally:
        del os.environ[MULTIPROC_ENV]
        shutil.rmtree(directory, ignore_errors=True)


def serve(
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
    migrate: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Apply migrations first.")
    ] = True,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="API processes. One serves ~250-300 requests/s on a core; more absorb bursts "
            "of clients (the API keeps no state between requests).",
        ),
    ] = 1,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log",
            help="Log every request (a watching client polls every second: off by default; "
            "errors are logged either way).",
        ),
    ] = False,
) -> None:
    """Run the HTTP API (uvicorn)."""
    from db.migrate import upgrade
    from db.settings import get_settings

    if get_settings().auth_mode == "open" and host not in ("127.0.0.1", "localhost", "::1"):
        err_console.print(
            f"[bold red]open mode on {host}: anyone who can reach this port acts as owner "
            "'local'. Set HPSEARCH_AUTH_MODE=keys (see SECURITY.md).[/]"
        )
    if migrate:
        upgrade()
        console.print("database migrated")
    # migrated above, or by a separate `hpsearch migrate`: the app must not migrate again.
    os.environ["HPSEARCH_MIGRATE_ON_START"] = "false"
    get_settings.cache_clear()
    with metrics_directory(workers):
        _run_uvicorn(host, port, log_level, workers, access_log)


def _run_uvicorn(host: str, port: int, log_level: str, workers: int, access_log: bool) -> None:
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    from db.settings import get_settings

    settings = get_settings()
    settings.apply_log_level()
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=host,
        port=port,
        log_level=log_level,
        workers=workers,
        access_log=access_log,
        # JSON: uvicorn's loggers pass their records to the root logger's JSON handler
        log_config=None if settings.log_format == "json" else LOGGING_CONFIG,
    )


def celery_app_command() -> list[str]:
    """``celery -A`` the workers' app, with this interpreter."""
    return [sys.executable, "-m", "celery", "-A", "worker.celery_app:app"]


def worker_command(concurrency: int, queue: str, loglevel: str, quiet: bool = False) -> list[str]:
    """The Celery worker command line ``hpsearch worker`` execs (``quiet``: without Celery's
    banner, which is no log line: JSON logs have none)."""
    return [
        *celery_app_command(),
        *(["--quiet"] if quiet else []),
        "worker",
        "--loglevel",
        loglevel,
        "--concurrency",
        str(concurrency),
        "--queues",
        queue,
        "--pool",
        "prefork",
    ]


def worker(
    concurrency: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    queue: Annotated[str | None, typer.Option(help="Queue (default: settings).")] = None,
    loglevel: Annotated[
        str | None, typer.Option(help="Celery log level (default: HPSEARCH_LOG_LEVEL).")
    ] = None,
) -> None:
    """Run a Celery worker (replaces this process)."""
    from db.settings import get_settings

    settings = get_settings()
    command = worker_command(
        concurrency,
        queue or settings.queue_name,
        loglevel or settings.log_level,
        quiet=settings.log_format == "json",
    )
    sys.stdout.flush()
    os.execv(command[0], command)


def flower_command(address: str, port: int) -> list[str]:
    """The Celery Flower command line ``hpsearch flower`` execs (a web UI of queue and workers)."""
    return [
        *celery_app_command(),
        "flower",
        f"--address={address}",
        f"--port={port}",
    ]


def flower(
    address: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 5555,
) -> None:
    """Run Celery Flower to watch the queue and the workers (replaces this process)."""
    command = flower_command(address, port)
    sys.stdout.flush()
    os.execv(command[0], command)


def migrate() -> None:
    """Apply the database migrations."""
    from db.migrate import upgrade
    from db.settings import get_settings

    upgrade()
    url = get_settings().resolved_database_url()
    console.print(f"database at {url.split('@')[-1]} is up to date")
