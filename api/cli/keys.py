"""``hpsearch keys``: administer API keys and owners' quotas, straight in the database.

Run where the service's settings reach its database (``HPSEARCH_DATABASE_URL``). The server
only asks for keys when ``HPSEARCH_AUTH_MODE=keys``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from api.cli.common import Typer, console, err_console

keys_app = Typer(help="Create, list and revoke API keys; set owners' quotas.")


def _session():  # type: ignore[no-untyped-def]
    from db.engine import session_scope

    return session_scope()


@keys_app.command("create")
def create(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="The owner the key acts as (created if new).")
    ],
    expires_in_days: Annotated[
        float | None,
        typer.Option(min=0.0, max=3650.0, help="The key is refused after this many days."),
    ] = None,
) -> None:
    """Create a key for owner NAME and print it (only its hash is stored: keep it now)."""
    from db.repositories.owners import InvalidOwnerName, create_key
    from db.values import utcnow

    expires = None if expires_in_days is None else utcnow() + timedelta(days=expires_in_days)
    try:
        with _session() as session:
            key = create_key(session, name, expires)
    except InvalidOwnerName as exc:
        err_console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    err_console.print(f"created key {key.id} for owner {key.owner}; it is shown only once:")
    # The token alone on stdout, so `KEY=$(hpsearch keys create alice)` works.
    print(key.token)


def _when(moment: datetime | None, none: str = "-") -> str:
    return moment.isoformat(timespec="seconds") if moment else none


@keys_app.command("list")
def list_keys(
    owner: Annotated[str | None, typer.Option(help="Only this owner's keys.")] = None,
) -> None:
    """List keys: ids, owners, when each expires and was last used.

    The secrets are not stored: only their hashes.
    """
    from db.repositories.owners import list_keys as query

    with _session() as session:
        keys = query(session, owner)
        table = Table("key id", "owner", "created", "expires", "last used", "revoked")
        for key in keys:
            table.add_row(
                key.id,
                key.owner,
                _when(key.created_at),
                _when(key.expires_at, "never"),
                _when(key.last_used_at, "never"),
                _when(key.revoked_at),
            )
    console.print(table)


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[
        str, typer.Argument(metavar="KEY_ID", help="The key's id (from `keys list`).")
    ],
) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    from db.repositories.owners import revoke_key

    with _session() as session:
        revoked = revoke_key(session, key_id)
    if not revoked:
        err_console.print(f"[red]no live key {key_id!r}[/]")
        raise typer.Exit(1)
    console.print(f"key {key_id} revoked")


@keys_app.command("quota")
def quota(
    owner: Annotated[str, typer.Argument(metavar="OWNER", help="The owner.")],
    active_jobs: Annotated[int | None, typer.Option(min=0, help="Queued or running jobs.")] = None,
    pending_trials: Annotated[
        int | None, typer.Option(min=0, help="Trials its active jobs may still have to run.")
    ] = None,
    stored_bytes: Annotated[
        int | None, typer.Option(min=0, help="Bytes of datasets, models and checkpoints.")
    ] = None,
    requests_per_minute: Annotated[
        int | None, typer.Option(min=1, help="Requests a minute each of its keys may make.")
    ] = None,
    reset: Annotated[
        bool, typer.Option("--reset", help="Drop the owner's overrides first (back to defaults).")
    ] = False,
) -> None:
    """Show an owner's quotas and usage; the options override the service-wide defaults."""
    from api.quotas import Quotas
    from db.repositories.owners import InvalidOwnerName, set_quotas, usage
    from db.settings import get_settings

    try:
        with _session() as session:
            row = set_quotas(
                session,
                owner,
                active_jobs=active_jobs,
                pending_trials=pending_trials,
                stored_bytes=stored_bytes,
                requests_per_minute=requests_per_minute,
                reset=reset,
            )
            limits, used = Quotas.of(row, get_settings()), usage(session, owner)
            rate = row.requests_per_minute or get_settings().requests_per_minute
    except InvalidOwnerName as exc:
        err_console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    table = Table("quota", "limit", "used")
    for name in ("active_jobs", "pending_trials", "stored_bytes"):
        table.add_row(name, str(getattr(limits, name)), str(getattr(used, name)))
    table.add_row("requests_per_minute (per key)", str(rate), "-")
    console.print(f"owner [bold]{owner}[/]")
    console.print(table)
