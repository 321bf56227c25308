"""Custom Keras objects: RReLU and the learning-rate schedules (values and configs)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from search_spaces.keras_objects import (
    OneCycleSchedule,
    PowerSchedule,
    RandomizedLeakyReLU,
    exponential_schedule,
    piecewise_schedule,
)


def lr_at(schedule: keras.optimizers.schedules.LearningRateSchedule, step: int) -> float:
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_rrelu_training_vs_inference() -> None:
    layer = RandomizedLeakyReLU(0.1, 0.3, seed=1)
    x = -np.ones((64, 16), dtype="float32")
    inference = keras.ops.convert_to_numpy(layer(x, training=False))
    np.testing.assert_allclose(inference, -0.2, rtol=1e-6)
    train = keras.ops.convert_to_numpy(layer(x, training=True))
    slopes = -train
    assert slopes.min() >= 0.1 - 1e-6 and slopes.max() <= 0.3 + 1e-6
    assert slopes.std() > 0.02  # drawn per element
    positive = keras.ops.convert_to_numpy(layer(np.full((2, 3), 2.0, "float32"), training=True))
    np.testing.assert_allclose(positive, 2.0)


def test_rrelu_config_roundtrip() -> None:
    layer = RandomizedLeakyReLU(0.05, 0.25, seed=3, name="r")
    again = RandomizedLeakyReLU.from_config(layer.get_config())
    assert (again.lower, again.upper, again.seed, again.name) == (0.05, 0.25, 3, "r")
    with pytest.raises(ValueError):
        RandomizedLeakyReLU(0.5, 0.1)


def test_power_schedule() -> None:
    sched = PowerSchedule(0.1, decay_steps=10, power=2.0)
    assert lr_at(sched, 0) == pytest.approx(0.1, rel=1e-5)
    assert lr_at(sched, 10) == pytest.approx(0.1 / 4, rel=1e-5)
    assert lr_at(sched, 30) == pytest.approx(0.1 / 16, rel=1e-5)
    assert PowerSchedule.from_config(sched.get_config()).get_config() == sched.get_config()


def test_one_cycle_schedule() -> None:
    sched = OneCycleSchedule(1.0, total_steps=100)
    assert sched.milestones == (50.0, 90.0, 100.0)
    assert lr_at(sched, 0) == pytest.approx(0.1, rel=1e-5)
    assert lr_at(sched, 25) == pytest.approx(0.55, rel=1e-5)
    assert lr_at(sched, 50) == pytest.approx(1.0, rel=1e-5)
    assert lr_at(sched, 70) == pytest.approx(0.55, rel=1e-5)
    assert lr_at(sched, 90) == pytest.approx(0.1, rel=1e-5)
    assert lr_at(sched, 100) == pytest.approx(0.001, rel=1e-5)
    assert lr_at(sched, 500) == pytest.approx(0.001, rel=1e-5)
    assert OneCycleSchedule.from_config(sched.get_config()).get_config() == sched.get_config()


def test_exponential_schedule() -> None:
    sched = exponential_schedule(0.01, decay_steps=20)
    assert lr_at(sched, 20) == pytest.approx(0.001, rel=1e-5)
    assert lr_at(sched, 40) == pytest.approx(0.0001, rel=1e-5)


def test_piecewise_schedule_in_epochs() -> None:
    sched = piecewise_schedule(0.1, [2, 5], [1.0, 0.5, 0.1], steps_per_epoch=10)
    assert sched.boundaries == [20, 50]
    assert lr_at(sched, 0) == pytest.approx(0.1, rel=1e-5)
    assert lr_at(sched, 21) == pytest.approx(0.05, rel=1e-5)
    assert lr_at(sched, 51) == pytest.approx(0.01, rel=1e-5)
