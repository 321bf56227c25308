"""The README's first command: `hpsearch demo` runs a whole search on the embedded defaults."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

import search_spaces.keras_objects  # noqa: F401  (registers custom layers and schedules)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_demo_runs_a_search_and_saves_the_best_model(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HPSEARCH_")}
    script = Path(sys.executable).with_name("hpsearch")
    result = subprocess.run(
        [str(script), "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "succeeded" in output
    assert "leaderboard" in output.lower() or "val_accuracy" in output
    models = list((tmp_path / "hpsearch-data" / "models").glob("*-best.keras"))
    assert len(models) == 1, output
    model = keras.saving.load_model(models[0])
    assert model.output_shape == (None, 10)  # digits: ten classes
    # the embedded default: a SQLite database in ./hpsearch-data, no servers
    assert (tmp_path / "hpsearch-data" / "hpsearch.db").exists()
