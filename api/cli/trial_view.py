"""One trial in the terminal: what it was, its epochs, and its learning curves as sparklines."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

#: eight heights of a sparkline, low to high.
BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float | None]) -> str:
    """``values`` as block characters scaled between their min and max (a gap for a missing or
    non-finite one)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return ""
    low, high = min(finite), max(finite)
    span = high - low or 1.0
    return "".join(
        BLOCKS[round((v - low) / span * (len(BLOCKS) - 1))]
        if v is not None and math.isfinite(v)
        else " "
        for v in values
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def curves_table(epochs: list[dict[str, Any]], objective: str) -> Table:
    """One row per metric: its curve over the epochs (execution 0), first, best and last."""
    first_run = [e for e in epochs if e["execution"] == 0]
    names = list(dict.fromkeys(name for e in first_run for name in e["metrics"]))
    names.sort(key=lambda n: (n != objective, n.startswith("val_"), n))
    table = Table("metric", "curve", "first", "min", "max", "last", title="learning curves")
    for name in names:
        values = [e["metrics"].get(name) for e in first_run]
        finite = [v for v in values if v is not None and math.isfinite(v)]
        table.add_row(
            f"[bold]{name}[/]" if name == objective else name,
            sparkline(values),
            _fmt(values[0]),
            _fmt(min(finite) if finite else None),
            _fmt(max(finite) if finite else None),
            _fmt(values[-1]),
        )
    rates = [e["learning_rate"] for e in first_run]
    if any(rate is not None for rate in rates):
        table.add_row("learning rate", sparkline(rates), _fmt(rates[0]), "", "", _fmt(rates[-1]))
    return table


def epochs_table(epochs: list[dict[str, Any]]) -> Table:
    """Every epoch of every execution with its metrics."""
    names = list(dict.fromkeys(name for e in epochs for name in e["metrics"]))
    table = Table("exec", "epoch", *names, "lr", "time s", title="epochs")
    for e in epochs:
        table.add_row(
            str(e["execution"]),
            str(e["epoch"]),
            *(_fmt(e["metrics"].get(name)) for name in names),
            _fmt(e["learning_rate"]),
            _fmt(e["duration_s"]),
        )
    return table


def print_trial(job: dict[str, Any], trial: dict[str, Any], console: Console) -> None:
    """A trial's outcome, hyperparameters, curves and epochs."""
    console.print(
        f"job [bold]{job['id']}[/] trial [bold]{trial['number']}[/]: {trial['status']}, "
        f"{job['objective']} = {_fmt(trial['score'])} (best epoch {_fmt(trial['best_epoch'])}), "
        f"{trial['epochs_run']} epochs in {_fmt(trial['timings']['duration_s'])} s, "
        f"{_fmt(trial['parameter_count'])} parameters"
    )
    timings = trial["timings"]
    if timings.get("proposal_s") is not None or timings.get("queued_s") is not None:
        console.print(
            f"proposed in {_fmt(timings.get('proposal_s'))} s, then waited "
            f"{_fmt(timings.get('queued_s'))} s in the queue before it started"
        )
    if trial.get("failure_reason"):
        console.print(f"[red]{escape(trial['failure_reason'])}[/]")
    console.print(
        "  ".join(f"{k}={_fmt(v)}" for k, v in trial["hyperparameters"].items()), soft_wrap=False
    )
    if trial["epochs"]:
        console.print(curves_table(trial["epochs"], job["objective"]))
        console.print(epochs_table(trial["epochs"]))
