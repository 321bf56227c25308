"""Small spec/model factories shared by the search_spaces tests (no network, no ../shared)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from search_spaces.schema import JobSpec

DATASET_FOR_TASK = {"multiclass": "iris", "binary": "breast_cancer", "regression": "diabetes"}


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base``."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and "type" not in value:
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def spec_dict(task: str = "multiclass", **sections: Any) -> dict[str, Any]:
    """A small valid spec as a dict; ``sections`` (model=..., optimizer=...) are deep-merged."""
    base: dict[str, Any] = {
        "dataset": {"name": DATASET_FOR_TASK[task]},
        "model": {"depth": 2, "units": 8},
        "training": {"epochs": 1, "batch_size": 16},
        "search": {"max_trials": 2},
    }
    return merge(base, sections)


def make_spec(task: str = "multiclass", **sections: Any) -> JobSpec:
    return JobSpec.model_validate(spec_dict(task, **sections))


def make_data(spec: JobSpec, rows: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random features (not centred) and labels matching the spec's dataset."""
    rng = np.random.default_rng(seed)
    info = spec.dataset.info
    x = (rng.normal(3.0, 2.0, size=(rows, *info.input_shape))).astype("float32")
    if spec.task == "regression":
        y = rng.normal(size=(rows,)).astype("float32")
    else:
        y = rng.integers(0, info.n_classes, size=(rows,))
    return x, y
