"""Machine-readable listings for the client commands: ``--json`` (the API's items as they are)
and ``--csv`` (one row per item, nested values as JSON, hyperparameters one column each)."""

from __future__ import annotations

import csv
import json
import sys
from typing import Annotated, Any

import typer

JsonOption = Annotated[bool, typer.Option("--json", help="Print the items as JSON.")]
CsvOption = Annotated[bool, typer.Option("--csv", help="Print the items as CSV.")]


def wants_data(as_json: bool, as_csv: bool) -> bool:
    """Whether to print data instead of a table; both flags at once is a usage error."""
    if as_json and as_csv:
        raise typer.BadParameter("give --json or --csv, not both")
    return as_json or as_csv


def _flat(item: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for key, value in item.items():
        if key == "hyperparameters" and isinstance(value, dict):
            row.update({f"hp.{name}": v for name, v in value.items()})
        elif isinstance(value, dict | list):
            row[key] = json.dumps(value, separators=(",", ":"))
        else:
            row[key] = value
    return row


def print_items(items: list[dict[str, Any]], as_json: bool) -> None:
    """Write ``items`` to standard output as JSON, or as CSV with a header of every column any
    item has (in first-seen order)."""
    if as_json:
        json.dump(items, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    rows = [_flat(item) for item in items]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
