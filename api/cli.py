"""``hpsearch``: run the service (serve, worker, migrate) and talk to it over HTTP.

The client commands use ``--url`` (``$HPSEARCH_API_URL``, default http://127.0.0.1:8000). The
``worker`` command execs Celery; this module never imports the worker package or TensorFlow.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from api import cli_status
from api.cli_common import DEFAULT, Typer, UrlOption, api_client, console, err_console, state
from api.cli_datasets import datasets_app
from api.cli_keys import keys_app
from api.cli_output import CsvOption, JsonOption, print_items, wants_data
from api.cli_serve import metrics_directory
from api.client import ApiClient
from api.console import print_jobs, print_leaderboard, print_warnings, watch_job
from api.console_trial import print_trial

app = Typer(
    name="hpsearch",
    help="Hyperparameter search for Keras dense networks.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(keys_app, name="keys")
app.add_typer(datasets_app, name="datasets")


@app.callback()
def main(
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="HPSEARCH_API_KEY",
            help="API key the client commands send (not needed by a server in the open mode).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Hyperparameter search for Keras dense networks."""
    state.api_key = api_key


# --- running the service --------------------------------------------------------------------------


@app.command()
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


def worker_command(concurrency: int, queue: str, loglevel: str, quiet: bool = False) -> list[str]:
    """The Celery worker command line ``hpsearch worker`` execs (``quiet``: without Celery's
    banner, which is no log line: JSON logs have none)."""
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.celery_app:app",
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


@app.command()
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
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.celery_app:app",
        "flower",
        f"--address={address}",
        f"--port={port}",
    ]


@app.command()
def flower(
    address: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 5555,
) -> None:
    """Run Celery Flower to watch the queue and the workers (replaces this process)."""
    command = flower_command(address, port)
    sys.stdout.flush()
    os.execv(command[0], command)


@app.command()
def migrate() -> None:
    """Apply the database migrations."""
    from db.migrate import upgrade
    from db.settings import get_settings

    upgrade()
    url = get_settings().resolved_database_url()
    console.print(f"database at {url.split('@')[-1]} is up to date")


# --- client commands -------------------------------------------------------------------------------


def _read_spec(path: Path) -> dict[str, Any]:
    """The spec in ``path`` ('-': standard input); a file that cannot be read or is not JSON
    ends the command with one line (exit 2)."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        err_console.print(f"[red]cannot read the spec {path}: {reason}[/]", soft_wrap=True)
        raise typer.Exit(2) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        err_console.print(f"[red]{path} is not valid JSON: {exc}[/]", soft_wrap=True)
        raise typer.Exit(2) from None


def _watch_and_report(client: ApiClient, job_id: str, interval: float) -> None:
    job = watch_job(client, job_id, console=console, interval=interval)
    if job["trials_completed"] + job["trials_failed"] + job["trials_diverged"]:
        print_leaderboard(client, job_id, console=console)
    if job["status"] != "succeeded":
        raise typer.Exit(1)


@app.command()
def submit(
    spec_file: Annotated[
        Path, typer.Argument(metavar="SPEC_FILE", help="A JSON job spec ('-' for stdin).")
    ],
    watch: Annotated[bool, typer.Option(help="Follow the job until it ends.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 1.0,
    url: UrlOption = DEFAULT,
) -> None:
    """Submit a job; print its id and the advice on its spec."""
    spec = _read_spec(spec_file)
    with api_client(url) as client:
        submitted = client.submit(spec)
        console.print(f"job [bold]{submitted['id']}[/] {submitted['status']}")
        print_warnings(submitted["warnings"], console)
        if watch:
            _watch_and_report(client, submitted["id"], interval)


@app.command()
def watch(
    job_id: Annotated[str, typer.Argument(metavar="JOB_ID", help="Job id.")],
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 1.0,
    url: UrlOption = DEFAULT,
) -> None:
    """Follow a job until it ends, then print its leaderboard."""
    with api_client(url) as client:
        _watch_and_report(client, job_id, interval)


@app.command()
def jobs(
    status: Annotated[str | None, typer.Option(help="Only jobs with this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
    url: UrlOption = DEFAULT,
) -> None:
    """List the newest jobs."""
    with api_client(url) as client:
        if wants_data(as_json, as_csv):
            print_items(client.jobs(status=status, limit=limit)["items"], as_json)
        else:
            print_jobs(client, console=console, status=status, limit=limit)


@app.command()
def trials(
    job_id: Annotated[str, typer.Argument(metavar="JOB_ID", help="Job id.")],
    limit: Annotated[int, typer.Option(min=1, max=100)] = 20,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
    url: UrlOption = DEFAULT,
) -> None:
    """Print a job's leaderboard, best trial first."""
    with api_client(url) as client:
        if wants_data(as_json, as_csv):
            print_items(client.trials(job_id, limit=limit)["items"], as_json)
        else:
            print_leaderboard(client, job_id, console=console, limit=limit)


@app.command()
def trial(
    job_id: Annotated[str, typer.Argument(metavar="JOB_ID", help="Job id.")],
    number: Annotated[int, typer.Argument(metavar="NUMBER", help="Trial number (0, 1...).")],
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT,
) -> None:
    """Show one trial: its hyperparameters, learning curves and epochs."""
    with api_client(url) as client:
        detail = client.trial(job_id, number)
        if as_json:
            print_items([detail], as_json=True)
            return
        print_trial(client.job(job_id), detail, console)


@app.command()
def model(
    job_id: Annotated[str, typer.Argument(metavar="JOB_ID", help="Job id.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the .keras file.")],
    rank: Annotated[int, typer.Option(min=1, help="1 = the best model.")] = 1,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
    url: UrlOption = DEFAULT,
) -> None:
    """Download one of a job's stored models (.keras)."""
    if output.exists() and not force:
        err_console.print(f"[red]{output} exists; give --force to overwrite it[/]")
        raise typer.Exit(1)
    with api_client(url) as client:
        info = client.download_model(job_id, output, rank=rank)
    console.print(
        f"wrote {info['path']} ({info['size_bytes']} bytes, trial {info['trial_number']}, "
        f"sha256 {info['sha256']})"
    )


@app.command()
def delete(
    job_id: Annotated[str, typer.Argument(metavar="JOB_ID", help="Job id.")],
    url: UrlOption = DEFAULT,
) -> None:
    """Delete an ended job with its trials and models."""
    with api_client(url) as client:
        client.delete_job(job_id)
    console.print(f"job [bold]{job_id}[/] deleted")


@app.command()
def whoami(url: UrlOption = DEFAULT) -> None:
    """Print the owner the API key stands for and its quota usage."""
    with api_client(url) as client:
        account = client.me()
    console.print(f"owner [bold]{account['owner']}[/] ({account['auth_mode']} mode)")
    for quota in ("active_jobs", "pending_trials", "stored_bytes"):
        use = account[quota]
        console.print(f"  {quota}: {use['used']} of {use['limit']}")


@app.command()
def cancel(
    job_id: Annotated[str, typer.Argument(metavar="JOB_ID", help="Job id.")],
    url: UrlOption = DEFAULT,
) -> None:
    """Cancel a job (a running one stops after its current epoch)."""
    with api_client(url) as client:
        job = client.job(job_id)
        if job["status"] == "running" and job["cancel_requested"]:
            console.print(
                f"job [bold]{job_id}[/] is already being cancelled: it stops after its "
                "current epoch"
            )
            return
        job = client.cancel(job_id)
    state = "cancellation requested" if job["status"] == "running" else job["status"]
    console.print(f"job [bold]{job_id}[/] {state}")


@app.command()
def demo(
    spec_file: Annotated[
        Path | None,
        typer.Argument(metavar="SPEC_FILE", help="A spec JSON file (default: the digits example)."),
    ] = None,
    port: Annotated[int | None, typer.Option(help="API port (default: a free one).")] = None,
    keep_running: Annotated[
        bool, typer.Option(help="Leave the API and worker running after the job.")
    ] = False,
) -> None:
    """Run the service on the embedded defaults, search an example, print the leaderboard."""
    from api.demo import run_demo
    from db.settings import get_settings
    from search_spaces.example_specs import example_spec

    if get_settings().auth_mode == "keys" and not state.api_key:
        err_console.print(
            "[red]HPSEARCH_AUTH_MODE is keys, so the demo's API would refuse its own requests: "
            "pass a key (hpsearch --api-key hps_... demo, or HPSEARCH_API_KEY) or run the demo "
            "in open mode (unset HPSEARCH_AUTH_MODE).[/]"
        )
        raise typer.Exit(1)
    spec = _read_spec(spec_file) if spec_file else example_spec()
    job = run_demo(
        spec, port=port, keep_running=keep_running, console=console, api_key=state.api_key
    )
    if job["status"] != "succeeded":
        raise typer.Exit(1)


if __name__ == "__main__":  # pragma: no cover
    app()


app.command("status")(cli_status.status)
