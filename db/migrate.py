"""Apply alembic migrations programmatically (used by `hpsearch migrate`, the API, workers, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from db.settings import get_settings

_HERE = Path(__file__).resolve().parent


def alembic_config(url: str | None = None) -> Config:
    """An alembic Config pointing at this package's migrations and at ``url``."""
    config = Config()
    config.set_main_option("script_location", str(_HERE / "migrations"))
    config.set_main_option("sqlalchemy.url", url or get_settings().resolved_database_url())
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """Bring the database at ``url`` (default: the configured one) up to ``revision``."""
    if url is None or url.startswith("sqlite"):
        get_settings().ensure_data_dir()
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)
