"""A grid's points are counted at validation, without building the grid, and a grid over
``max_grid_points`` is refused with a 422-style error naming the field and the limit."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from pydantic import ValidationError

from search_spaces import limits
from search_spaces.hyperparameters import build_hyperparameters
from search_spaces.params import FloatRange, IntRange
from search_spaces.space_size import grid_points, searched_dimensions, value_count
from tests.search_spaces.helpers import make_spec, spec_dict

GRID = {"search": {"algorithm": "grid"}}


def _grid_error(**sections: Any) -> dict[str, Any]:
    with pytest.raises(ValidationError) as info:
        make_spec(**GRID, **sections)
    (error,) = [e for e in info.value.errors() if e["type"] == "spec_rule"]
    return dict(error["ctx"])


def test_a_grid_with_a_tiny_step_is_refused_at_once() -> None:
    started = time.monotonic()
    error = _grid_error(
        optimizer={"learning_rate": {"type": "float", "min": 0.001, "max": 0.01, "step": 1e-300}}
    )
    assert time.monotonic() - started < 1  # counted, not built
    assert error["field"] == "search.algorithm"
    assert error["limit"] == limits.MAX_GRID_POINTS
    assert "max_grid_points" in error["message"] and "10^297" in error["message"]


def test_a_step_too_small_for_a_float_to_count_is_refused() -> None:
    error = _grid_error(
        optimizer={"learning_rate": {"type": "float", "min": 0.001, "max": 0.01, "step": 1e-320}}
    )
    assert error["limit"] == limits.MAX_GRID_POINTS


def test_millions_of_points_are_refused_and_the_limit_itself_is_accepted() -> None:
    units = {"type": "int", "min": 1, "max": 2048}  # 2048 values
    error = _grid_error(model={"units": units}, training={"batch_size": units})
    assert "4,194,304 points" in error["message"]
    # 1,000 x 100 = the limit exactly
    spec = make_spec(
        **GRID,
        model={"units": {"type": "int", "min": 1, "max": 1000}},
        training={"batch_size": {"type": "int", "min": 1, "max": 100}},
    )
    assert grid_points(spec) == limits.MAX_GRID_POINTS


def test_per_layer_parameters_count_once_per_layer() -> None:
    spec = make_spec(
        **GRID,
        model={
            "depth": {"type": "int", "min": 1, "max": 3},
            "units": {"type": "choice", "values": [8, 16]},
            "dropout": {"type": "choice", "values": [0.0, 0.1, 0.2]},
            "per_layer": ["units", "dropout"],
        },
    )
    assert grid_points(spec) == 3 * 2**3 * 3**3
    wide = spec_dict(**GRID, model={"depth": 20, "units": {"type": "choice", "values": [8, 16]}})
    wide["model"]["per_layer"] = ["units"]
    with pytest.raises(ValidationError, match="1,048,576 points"):
        make_spec(**{k: v for k, v in wide.items() if k != "dataset"})


def _kt_count(hp: Any) -> int:
    values = getattr(hp, "values", None)
    return 1 if values is None else len(list(values))


@pytest.mark.parametrize(
    "sections",
    [
        {"model": {"units": {"type": "int", "min": 8, "max": 64, "step": 8}}},
        {"model": {"units": {"type": "int", "min": 8, "max": 512, "step": 2, "sampling": "log"}}},
        {"optimizer": {"learning_rate": {"type": "float", "min": 1e-4, "max": 1e-1, "step": 10, "sampling": "log"}}},
        {"optimizer": {"learning_rate": {"type": "float", "min": 0.01, "max": 0.1, "step": 0.01}}},
        {
            "model": {
                "depth": {"type": "int", "min": 1, "max": 2},
                "activation": {"type": "choice", "values": ["relu", "selu", "tanh"]},
                "per_layer": ["activation"],
            },
            "training": {"batch_size": {"type": "choice", "values": [16, 32]}},
        },
    ],
)  # fmt: skip
def test_the_count_is_keras_tuners_own(sections: dict[str, Any]) -> None:
    spec = make_spec(**GRID, **sections)
    kt_points = math.prod(_kt_count(hp) for hp in build_hyperparameters(spec).space)
    assert grid_points(spec) == kt_points


def test_value_counts() -> None:
    assert value_count(IntRange[int](type="int", min=1, max=10, step=3)) == 4
    assert value_count(FloatRange[float](type="float", min=0.1, max=0.1)) == 1
    assert value_count(FloatRange[float](type="float", min=0.1, max=0.2)) is None
    with pytest.raises(ValidationError, match="step multiplies"):
        FloatRange[float](type="float", min=0.1, max=1.0, step=0.5, sampling="log")


def _bayesian(max_trials: int, **model: Any) -> Any:
    return make_spec(search={"algorithm": "bayesian", "max_trials": max_trials}, model=model)


def test_the_random_start_leaves_the_gaussian_process_most_of_the_budget() -> None:
    per_layer = {
        "depth": {"type": "int", "min": 1, "max": 3},
        "units": {"type": "choice", "values": [8, 16, 32]},
        "activation": {"type": "choice", "values": ["relu", "tanh"]},
        "dropout": {"type": "float", "min": 0.0, "max": 0.5},
        "per_layer": ["units", "activation", "dropout"],
    }
    spec = _bayesian(30, **per_layer)
    assert searched_dimensions(spec) == 1 + 3 * 3  # depth, then 3 per-layer params x 3 layers
    assert spec.initial_points == 8  # Keras Tuner's rule said 30: the whole budget, all random
    recorded = spec.with_recorded_defaults()
    assert recorded.search.num_initial_points == 8 and recorded.initial_points == 8
    assert _bayesian(30, depth={"type": "int", "min": 1, "max": 2}).initial_points == 3
    assert _bayesian(1, depth={"type": "int", "min": 1, "max": 2}).initial_points == 1
    assert make_spec().with_recorded_defaults() == make_spec()  # random: nothing to record


def test_a_random_start_covering_the_budget_is_warned_of() -> None:
    from search_spaces.advice import advise

    spec = make_spec(
        search={"algorithm": "bayesian", "max_trials": 10, "num_initial_points": 10},
        model={"depth": {"type": "int", "min": 1, "max": 2}},
    )
    codes = {a.code: a for a in advise(spec)}
    assert "10 trials" in codes["bayesian_all_random"].message
    spec = make_spec(
        search={"algorithm": "bayesian", "max_trials": 10},
        model={"depth": {"type": "int", "min": 1, "max": 2}},
    )
    assert "bayesian_all_random" not in {a.code for a in advise(spec)}
