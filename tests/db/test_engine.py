"""Engines for every SQLite URL a user may give: files keep a pool sized for the API's threads,
in-memory databases keep SQLAlchemy's own."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from db.engine import SQLITE_POOL_SIZE, get_engine


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_database_opens(url: str) -> None:
    with get_engine(url).connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar() == 1


def test_a_database_file_keeps_a_connection_per_reading_thread(tmp_path: Path) -> None:
    engine = get_engine(f"sqlite:///{tmp_path / 'pool.db'}")
    assert engine.pool.size() == SQLITE_POOL_SIZE
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
