"""What every client command of ``hpsearch`` shares: consoles, the URL option, the API client."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from typer.core import TyperCommand

from api.client import DEFAULT_URL, ApiClient, ApiError


class PlainUsageCommand(TyperCommand):
    """Usage lines as every CLI writes them: ``hpsearch watch [OPTIONS] JOB_ID`` (typer marks
    a required argument ``{JOB_ID}``)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = param.metavar or (param.name or "").upper()
                pieces.append(name if param.required else f"[{name}]")
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


class Typer(typer.Typer):
    """A ``typer.Typer`` whose commands write plain usage lines."""

    def command(self, *args: Any, cls: type[TyperCommand] | None = None, **kwargs: Any) -> Any:
        return super().command(*args, cls=cls or PlainUsageCommand, **kwargs)


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
