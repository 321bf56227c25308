"""The probe statistics on activations made here, one case per sign the articles describe."""

from __future__ import annotations

import numpy as np
import pytest

from health.signals import (
    dead_share,
    identical_share,
    layer_signals,
    output_spread,
    saturated_share,
)

rng = np.random.default_rng(0)


def test_dead_units_are_those_zero_on_every_row() -> None:
    values = np.maximum(rng.normal(size=(64, 8)), 0)
    values[:, :3] = 0.0  # three units dead
    values[:-1, 3] = 0.0  # one unit alive on a single row: not dead
    assert dead_share(values, "relu") == pytest.approx(3 / 8)
    # leaky units keep a slope: they cannot die
    assert dead_share(values, "leaky_relu") is None


def test_saturated_units_sit_at_a_bound_on_most_rows() -> None:
    logits = rng.normal(size=(100, 4))
    logits[:, 0] += 12.0  # stuck near 1
    logits[:, 1] -= 12.0  # stuck near 0
    logits[:95, 2] *= 30  # near a bound on ~95% of rows
    values = 1 / (1 + np.exp(-logits))
    assert saturated_share(values, "sigmoid") == pytest.approx(0.5, abs=0.25)
    assert saturated_share(values, "sigmoid") >= 0.5
    assert saturated_share(np.tanh(rng.normal(size=(100, 4)) * 0.1), "tanh") == 0.0
    assert saturated_share(values, "relu") is None


def test_identical_units_of_a_symmetric_layer() -> None:
    # ones initialization: every unit computes the same sum of its inputs
    inputs = rng.normal(size=(32, 5))
    symmetric = np.repeat(inputs.sum(axis=1, keepdims=True), 6, axis=1)
    assert identical_share(symmetric) == 1.0
    assert identical_share(rng.normal(size=(32, 6))) == 0.0
    half = rng.normal(size=(32, 4))
    half[:, 1] = half[:, 0]
    assert identical_share(half) == 0.5
    assert identical_share(rng.normal(size=(32, 1))) == 0.0


def test_a_constant_prediction_has_no_spread() -> None:
    assert output_spread(np.full((50, 3), 0.2)) == pytest.approx(0.0, abs=1e-12)
    assert output_spread(rng.normal(size=(50, 3))) > 0.5


def test_layer_signals_are_compact_and_finite() -> None:
    values = np.tanh(rng.normal(size=(20, 10)))
    found = layer_signals(values, "tanh")
    assert set(found) == {"mean", "std", "dead", "sat", "same"}
    assert found["dead"] is None and 0.0 <= found["sat"] <= 1.0 and found["same"] == 0.0
    exploded = layer_signals(np.full((4, 2), np.inf), "linear")
    assert set(exploded.values()) == {None}  # stored as null, never as NaN


def test_units_dead_alike_are_not_symmetric_when_their_weights_differ() -> None:
    dead = np.zeros((32, 8))  # every unit dead: their outputs are all the same zeros
    assert layer_signals(dead, "relu")["same"] == 1.0
    random_kernel = rng.normal(size=(5, 8))
    found = layer_signals(dead, "relu", random_kernel)
    assert found["dead"] == 1.0 and found["same"] == 0.0
    assert layer_signals(dead, "relu", np.ones((5, 8)))["same"] == 1.0  # a constant init
