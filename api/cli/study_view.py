"""A technique study's table in the terminal, as Markdown or as CSV (``hpsearch study``)."""

from __future__ import annotations

import csv
import io
import json
import sys
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from api.cli.common import DEFAULT, UrlOption, api_client, console
from api.cli.trial_view import sparkline
from studies.table import COLUMNS, rows, title


def markdown(study: dict[str, Any]) -> str:
    """The table as GitHub Markdown, its title above and the readings below."""
    lines = [f"**{title(study)}**", "", "| " + " | ".join(COLUMNS) + " |"]
    lines.append("|" + "---|" * len(COLUMNS))
    lines += ["| " + " | ".join(r) + " |" for r in rows(study)]
    lines += [""] + [f"- {line}" for line in study["reading"]]
    return "\n".join(lines) + "\n"


def csv_text(study: dict[str, Any]) -> str:
    """One row per variant, unrounded: the objective's and fit time's statistics and the
    difference to the baseline."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["variant", "is_baseline", "n", "mean", "std", "low", "high", "delta",
                     "delta_low", "delta_high", "p_value", "beyond_noise", "fit_s_mean",
                     "fit_s_std", "epochs_to_best_mean"])  # fmt: skip
    for v in study["variants"]:
        o, d = v["objective"], (v.get("vs_baseline") or {}).get("objective") or {}
        writer.writerow([v["name"], v["is_baseline"], o["n"], o["mean"], o["std"], o["low"],
                         o["high"], d.get("delta"), d.get("low"), d.get("high"), d.get("p_value"),
                         d.get("beyond_noise"), v["fit_s"]["mean"], v["fit_s"]["std"],
                         v["epochs_to_best"]["mean"]])  # fmt: skip
    return out.getvalue()


def table(study: dict[str, Any]) -> Table:
    """The rich table, with each variant's mean learning curve as a sparkline."""
    shown = Table(title=escape(title(study)))
    for column in (*COLUMNS, "curve"):
        shown.add_column(column, justify="left" if column in ("variant", "curve") else "right")
    for row, variant in zip(rows(study), study["variants"], strict=True):
        shown.add_row(*[escape(c) for c in row], sparkline(variant["curve"]))
    return shown


def study(
    job_id: Annotated[str, typer.Argument(metavar="JOB_ID", help="A study's job id.")],
    as_markdown: Annotated[bool, typer.Option("--markdown", help="Print Markdown.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
    url: UrlOption = DEFAULT,
) -> None:
    """Show a technique study's table: each variant over its seeds, against the baseline.

    Per variant the mean, std and interval of the objective, the difference to the baseline
    with Welch's p (* beyond the seeds' noise), fit seconds and epochs to best, and its mean
    learning curve; then the readings."""
    if sum((as_markdown, as_csv, as_json)) > 1:
        raise typer.BadParameter("give one of --markdown, --csv, --json")
    with api_client(url) as client:
        found = client.job_study(job_id)
    if as_json:
        sys.stdout.write(json.dumps(found, indent=2) + "\n")
    elif as_markdown:
        sys.stdout.write(markdown(found))
    elif as_csv:
        sys.stdout.write(csv_text(found))
    else:
        console.print(table(found))
        for line in found["reading"]:
            console.print(f"- {escape(line)}")
