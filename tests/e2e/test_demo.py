"""The README's first command: `hpsearch demo` runs a whole search on the embedded defaults."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import keras
import pytest

import search_spaces.keras_objects  # noqa: F401  (registers custom layers and schedules)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def _hpsearch(
    cwd: Path, *args: str, timeout: int = 60, **settings: str
) -> subprocess.CompletedProcess[str]:
    """Run the installed ``hpsearch`` in ``cwd`` with no HPSEARCH_ variable but ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPSEARCH_")}
    return subprocess.run(
        [str(Path(sys.executable).with_name("hpsearch")), *args],
        cwd=cwd,
        env={**env, **settings},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_demo_runs_a_search_and_saves_the_best_model(tmp_path: Path) -> None:
    result = _hpsearch(tmp_path, "demo", timeout=280)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "succeeded" in output
    assert "leaderboard" in output.lower() or "val_accuracy" in output
    # where to watch it: the job's dashboard page
    assert re.search(r"http://127\.0\.0\.1:\d+/jobs/[0-9a-f]{32}", output), output
    models = list((tmp_path / "hpsearch-data" / "models").glob("*-best.keras"))
    assert len(models) == 1, output
    model = keras.saving.load_model(models[0])
    assert model.output_shape == (None, 10)  # digits: ten classes
    # the embedded default: a SQLite database in ./hpsearch-data, no servers
    assert (tmp_path / "hpsearch-data" / "hpsearch.db").exists()


def test_demo_in_keys_mode_acts_as_the_given_keys_owner(tmp_path: Path) -> None:
    def hpsearch(*args: str, timeout: int = 60) -> subprocess.CompletedProcess[str]:
        return _hpsearch(tmp_path, *args, timeout=timeout, HPSEARCH_AUTH_MODE="keys")

    refused = hpsearch("demo")
    assert refused.returncode == 1
    assert "HPSEARCH_AUTH_MODE is keys" in refused.stderr
    assert not (tmp_path / "hpsearch-data" / "hpsearch.db").exists()  # stopped before starting

    assert hpsearch("migrate").returncode == 0
    created = hpsearch("keys", "create", "alice")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    result = hpsearch("--api-key", token, "demo", timeout=280)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "succeeded" in result.stdout
    with sqlite3.connect(tmp_path / "hpsearch-data" / "hpsearch.db") as db:
        assert db.execute("SELECT owner, status FROM jobs").fetchall() == [("alice", "succeeded")]
