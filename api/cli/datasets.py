"""``hpsearch datasets``: upload, list, inspect and delete datasets over the API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from api.cli.common import DEFAULT, Typer, UrlOption, api_client, console
from api.cli.output import CsvOption, JsonOption, print_items, wants_data

datasets_app = Typer(help="Upload, list, inspect and delete datasets.")


@datasets_app.command("upload")
def upload(
    file: Annotated[
        Path,
        typer.Argument(metavar="FILE", exists=True, dir_okay=False, help="CSV, NPZ or Parquet."),
    ],
    target: Annotated[str | None, typer.Option(help="The target column (CSV, Parquet).")] = None,
    name: Annotated[str | None, typer.Option(help="A label (default: the file name).")] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="csv, npz or parquet (default: extension).")
    ] = None,
    task: Annotated[
        str | None, typer.Option(help="binary, multiclass or regression (default: inferred).")
    ] = None,
    url: UrlOption = DEFAULT,
) -> None:
    """Upload a dataset and print the name a spec uses for it."""
    with api_client(url) as client:
        dataset = client.upload_dataset(file, target=target, name=name, fmt=fmt, task=task)
    console.print(
        f"dataset [bold]{dataset['ref']}[/]: {dataset['rows']} rows, "
        f"{dataset['n_features']} features, task {dataset['task']}"
    )
    console.print(f'use it in a spec as "dataset": {{"name": "{dataset["ref"]}"}}')


@datasets_app.command("list")
def list_datasets(
    limit: Annotated[int, typer.Option(min=1, max=100)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
    url: UrlOption = DEFAULT,
) -> None:
    """List the built-in datasets, then yours."""
    with api_client(url) as client:
        page = client.datasets(limit=limit, offset=offset)
    if wants_data(as_json, as_csv):
        print_items(page["items"], as_json)
        return
    table = Table(
        "ref", "name", "task", "rows", "features", "offline", title=f"{page['total']} datasets"
    )
    for item in page["items"]:
        offline = "yes" if item["available_offline"] else "no: downloaded on first use"
        table.add_row(
            item["ref"],
            item["name"],
            item["task"],
            str(item["rows"]),
            str(item["n_features"]),
            offline,
        )
    console.print(table)


@datasets_app.command("show")
def show(
    dataset_id: Annotated[
        str, typer.Argument(metavar="DATASET_ID", help="A built-in's name or an upload's id.")
    ],
    url: UrlOption = DEFAULT,
) -> None:
    """Print one dataset with its summary (JSON)."""
    with api_client(url) as client:
        dataset = client.dataset(dataset_id)
    console.print_json(json.dumps(dataset))


@datasets_app.command("delete")
def delete(
    dataset_id: Annotated[str, typer.Argument(metavar="DATASET_ID", help="The upload's id.")],
    url: UrlOption = DEFAULT,
) -> None:
    """Delete an uploaded dataset (refused while a queued or running job uses it)."""
    with api_client(url) as client:
        client.delete_dataset(dataset_id)
    console.print(f"dataset {dataset_id} deleted")
