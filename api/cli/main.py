"""``hpsearch``: run the service (serve, worker, migrate) and talk to it over HTTP.

The client commands use ``--url`` (``$HPSEARCH_API_URL``, default http://127.0.0.1:8000). The
``worker`` command execs Celery; this module never imports the worker package or TensorFlow.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli import serve, study_view
from api.cli.common import DEFAULT, Typer, UrlOption, api_client, console, err_console, state
from api.cli.console import (
    print_jobs,
    print_leaderboard,
    print_warnings,
    trials_done,
    watch_job,
)
from api.cli.datasets import datasets_app
from api.cli.keys import keys_app
from api.cli.output import CsvOption, JsonOption, print_items, wants_data
from api.cli.status import status as status_command
from api.cli.trial_view import print_trial
from api.client import ApiClient

app = Typer(
    name="hpsearch",
    help="Hyperparameter search for Keras dense networks.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(keys_app, name="keys")
app.add_typer(datasets_app, name="datasets")
for command in (serve.serve, serve.worker, serve.flower, serve.migrate, study_view.study):
    app.command()(command)


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
    if trials_done(job):
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
    from api.cli.demo import run_demo
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


app.command("status")(status_command)
