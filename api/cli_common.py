"""What every client command of ``hpsearch`` shares: consoles, the URL option, the API client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import httpx
import typer
from rich.console import Console

from api.client import DEFAULT_URL, ApiClient, ApiError

console = Console()
err_console = Console(stderr=True)

UrlOption = Annotated[
    str,
    typer.Option("--url", envvar="HPSEARCH_API_URL", help="Base URL of the hpsearch API."),
]
DEFAULT = DEFAULT_URL


class _State:
    #: set by ``hpsearch --api-key`` (or $HPSEARCH_API_KEY); None: send no key.
    api_key: str | None = None


state = _State()


@contextmanager
def api_client(url: str) -> Iterator[ApiClient]:
    """An ``ApiClient``; API errors and unreachable servers end the command with a message."""
    try:
        with ApiClient(url, api_key=state.api_key) as client:
            yield client
    except ApiError as exc:
        err_console.print(f"[red]{exc.describe()}[/]")
        raise typer.Exit(1) from exc
    except httpx.TransportError as exc:
        err_console.print(f"[red]cannot reach the API at {url}: {exc}[/]")
        raise typer.Exit(2) from exc
