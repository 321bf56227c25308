"""Rich rendering of jobs and leaderboards, and a live progress view of a running job.

Reusable by any command built on ``ApiClient`` (``hpsearch submit --watch``, demos...).
"""

from __future__ import annotations

import time
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from api.client import FINAL_STATUSES, ApiClient, ApiError

#: answers that mean "the API is not there right now", not "this request is wrong".
PASSING_STATUSES = frozenset({502, 503, 504})

STATUS_STYLE = {
    "queued": "yellow",
    "running": "cyan",
    "succeeded": "green",
    "completed": "green",
    "failed": "red",
    "diverged": "magenta",
    "pruned": "blue",
    "cancelled": "dim",
}
DONE_COUNTERS = ("trials_completed", "trials_failed", "trials_diverged", "trials_pruned")


def trials_done(job: dict[str, Any]) -> int:
    """The job's trials that ended with a verdict (what counts against ``max_trials``); an
    older server sends no ``trials_pruned``."""
    return sum(job.get(counter, 0) for counter in DONE_COUNTERS)


def _console(console: Console | None) -> Console:
    return console or Console()


def _status(value: str) -> str:
    style = STATUS_STYLE.get(value, "")
    return f"[{style}]{value}[/]" if style else value


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _compact(hyperparameters: dict[str, Any], keys: set[str] | None = None) -> str:
    """``name=value`` pairs, wrapped at spaces to the column's width (the terminal's)."""
    items = [(k, v) for k, v in hyperparameters.items() if keys is None or k in keys]
    return "  ".join(f"{k}={_number(v, 3)}" for k, v in items)


def _health(trial: dict[str, Any]) -> str:
    """The trial's verdicts on its training health, shortest words first kept whole."""
    verdicts = (trial.get("health") or {}).get("verdicts") or []
    words = [escape(v["code"].replace("_", " ")) for v in verdicts]
    if not words:
        return "-"
    style = "green" if words == ["healthy"] else "yellow"
    return f"[{style}]{', '.join(words)}[/]"


#: trials read to find the hyperparameters a job varies (its best first).
VARYING_SAMPLE = 500
#: the hyperparameter values that go with a verdict, printed under a leaderboard.
ADVICE_LINES = 3


def varying_keys(trials: list[dict[str, Any]]) -> set[str] | None:
    """The hyperparameters that differ between ``trials`` (None: show all)."""
    if len(trials) < 2:
        return None
    keys = {k for t in trials for k in t["hyperparameters"]}
    return {k for k in keys if len({repr(t["hyperparameters"].get(k)) for t in trials}) > 1}


def job_varying_keys(client: ApiClient, job_id: str) -> set[str] | None:
    """The hyperparameters that vary over the job's trials (up to its best ``VARYING_SAMPLE``),
    not only over the rows shown: the top rows often share a depth that other trials change."""
    trials: list[dict[str, Any]] = []
    while len(trials) < VARYING_SAMPLE:
        page = client.trials(job_id, limit=100, offset=len(trials))
        trials += page["items"]
        if not page["items"] or len(trials) >= page["total"]:
            break
    return varying_keys(trials)


def _trial_note(trial: dict[str, Any], keys: set[str] | None = None) -> str:
    note = escape(_compact(trial["hyperparameters"], keys))
    if trial.get("failure_reason"):
        reason = escape(trial["failure_reason"].strip().splitlines()[-1][:80])
        note = f"{note}\n[red]{reason}[/]" if note else f"[red]{reason}[/]"
    return note


def print_warnings(warnings: list[dict[str, Any]], console: Console | None = None) -> None:
    """The advice attached to a job, one line each."""
    out = _console(console)
    for warning in warnings:
        fields = ", ".join(warning.get("fields") or [])
        out.print(
            f"[yellow]warning[/] [bold]{escape(warning['code'])}[/] ({escape(fields)}): "
            f"{escape(warning['message'])}"
        )


def jobs_table(page: dict[str, Any]) -> Table:
    """A table of one page of jobs."""
    table = Table(title=f"jobs ({page['total']} total)")
    table.add_column("id", no_wrap=True)
    for column in ("name", "status", "dataset", "algorithm", "trials", "best", "created"):
        table.add_column(column)
    for job in page["items"]:
        done = trials_done(job)
        table.add_row(
            job["id"],
            escape(job.get("name") or ""),
            _status(job["status"]),
            job["dataset"],
            job["algorithm"],
            f"{done}/{job['max_trials']}",
            f"{job['objective']}={_number(job['best_score'])}",
            job["created_at"][:19].replace("T", " "),
        )
    return table


def print_jobs(
    client: ApiClient, console: Console | None = None, status: str | None = None, limit: int = 20
) -> None:
    """Fetch and print the newest jobs."""
    _console(console).print(jobs_table(client.jobs(status=status, limit=limit)))


def leaderboard_table(
    job: dict[str, Any], page: dict[str, Any], keys: set[str] | None = None
) -> Table:
    """A table of one page of a job's trials, best first, as wide as the terminal; ``keys``:
    the hyperparameters to show (default: those that differ between the rows)."""
    title = escape(job.get("name") or job["id"])
    table = Table(
        title=f"{title}: {job['objective']} ({job['direction']})", show_lines=True, expand=True
    )
    for column in ("trial", "status", "score", "epochs", "time s"):
        table.add_column(column, justify="left" if column == "status" else "right", no_wrap=True)
    table.add_column("health", max_width=24, overflow="fold")
    table.add_column("hyperparameters the job varies", ratio=1, min_width=28, overflow="fold")
    keys = keys if keys is not None else varying_keys(page["items"])
    for trial in page["items"]:
        table.add_row(
            str(trial["number"]),
            _status(trial["status"]),
            _number(trial["score"]),
            str(trial["epochs_run"]),
            _number(trial["timings"]["duration_s"], 3),
            _health(trial),
            _trial_note(trial, keys),
        )
    return table


def print_leaderboard(
    client: ApiClient, job_id: str, console: Console | None = None, limit: int = 10
) -> dict[str, Any]:
    """Fetch and print the job's best trials; returns the trials page."""
    job = client.job(job_id)
    page = client.trials(job_id, limit=limit)
    out = _console(console)
    out.print(leaderboard_table(job, page, job_varying_keys(client, job_id)))
    if page["total"] > len(page["items"]):
        out.print(f"[dim]{page['total'] - len(page['items'])} more trials[/]")
    for value in client.job_health(job_id)["values"][:ADVICE_LINES]:
        out.print(f"[yellow]health[/] {escape(value['advice'])}")
    return page


def print_job_summary(job: dict[str, Any], console: Console | None = None) -> None:
    """One line on a job's outcome (and its error, if any)."""
    out = _console(console)
    out.print(
        f"job [bold]{job['id']}[/] {_status(job['status'])}: "
        f"{job['trials_completed']} completed, {job['trials_failed']} failed, "
        f"{job['trials_diverged']} diverged, {job.get('trials_pruned', 0)} pruned; "
        f"best {job['objective']} = "
        f"{_number(job['best_score'])} (trial {_number(job['best_trial_number'])})"
    )
    if job.get("ended_by") in ENDED_BY:
        out.print(f"search ended: {ENDED_BY[job['ended_by']]}")
    if job.get("error"):
        out.print(f"[red]{escape(job['error'])}[/]")


#: what ended a search (``ended_by``), in words
ENDED_BY = {
    "target": "its target was reached (search.target)",
    "patience_trials": "no improvement in search.patience_trials trials",
    "time_limit_s": "its time limit (search.time_limit_s)",
}


def _description(job: dict[str, Any]) -> str:
    best = _number(job["best_score"])
    cancel = " cancelling" if job.get("cancel_requested") and job["status"] == "running" else ""
    return f"{_status(job['status'])}{cancel} best {job['objective']}={best}"


def watch_job(
    client: ApiClient,
    job_id: str,
    console: Console | None = None,
    interval: float = 1.0,
    timeout: float | None = None,
    unreachable_s: float = 300.0,
) -> dict[str, Any]:
    """Show a progress bar of trials done / max until the job is final; returns the final job.

    An API that stops answering (a restart, a 502-504) is polled on for ``unreachable_s``
    seconds before the error is raised. Raises ``TimeoutError`` after ``timeout`` seconds if
    given.
    """
    out = _console(console)
    deadline = None if timeout is None else time.monotonic() + timeout
    job = client.job(job_id)
    away_since: float | None = None
    with Progress(
        TextColumn("[bold]{task.fields[name]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=out,
        transient=False,
    ) as progress:
        task = progress.add_task(
            _description(job), total=job["max_trials"], name=escape(job.get("name") or job_id)
        )
        while True:
            done = trials_done(job)
            progress.update(
                task, completed=min(done, job["max_trials"]), description=_description(job)
            )
            if job["status"] in FINAL_STATUSES:
                if job["status"] == "succeeded":
                    progress.update(task, completed=job["max_trials"])
                break
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {job['status']} after {timeout} s")
            time.sleep(interval)
            try:
                job = client.job(job_id)
            except (httpx.TransportError, ApiError) as error:
                if isinstance(error, ApiError) and error.status_code not in PASSING_STATUSES:
                    raise
                # The API restarts, or its database blinks: keep the job in view meanwhile.
                if away_since is None:
                    away_since = time.monotonic()
                    progress.console.print(
                        f"[yellow]API unreachable ({type(error).__name__}); following the job "
                        "again when it answers[/]"
                    )
                away = time.monotonic() - away_since
                if away > unreachable_s:
                    raise
                progress.update(
                    task, description=f"[yellow]API unreachable for {away:.0f} s; retrying[/]"
                )
                continue
            if away_since is not None:
                progress.console.print("[green]the API answers again[/]")
                away_since = None
    print_job_summary(job, out)
    return job
