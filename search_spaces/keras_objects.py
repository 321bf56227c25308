"""Custom Keras objects of the builder: the RReLU layer and two learning-rate schedules.

Each is registered under the ``hpsearch`` package, so a saved ``.keras`` model reloads with
``keras.saving.load_model(path)`` once this module has been imported (no ``custom_objects``).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="hpsearch")
class RandomizedLeakyReLU(keras.layers.Layer):
    """Randomized leaky ReLU (RReLU): ``x`` if ``x >= 0`` else ``alpha * x``.

    At training time ``alpha`` is drawn uniformly in ``[lower, upper]`` for every element; at
    inference it is fixed to ``(lower + upper) / 2``.
    """

    def __init__(
        self, lower: float = 1 / 8, upper: float = 1 / 3, seed: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= lower <= upper:
            raise ValueError(f"RReLU needs 0 <= lower <= upper, got {lower}, {upper}")
        self.lower = float(lower)
        self.upper = float(upper)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.supports_masking = True

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if training:
            alpha = keras.random.uniform(
                ops.shape(inputs),
                minval=self.lower,
                maxval=self.upper,
                dtype=inputs.dtype,
                seed=self.seed_generator,
            )
        else:
            alpha = ops.cast((self.lower + self.upper) / 2.0, inputs.dtype)
        return ops.where(inputs >= 0, inputs, alpha * inputs)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "lower": self.lower, "upper": self.upper, "seed": self.seed}


@keras.saving.register_keras_serializable(package="hpsearch")
class PowerSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Power scheduling: ``lr / (1 + step / decay_steps) ** power``."""

    def __init__(self, initial_learning_rate: float, decay_steps: float, power: float = 1.0):
        if decay_steps <= 0:
            raise ValueError("decay_steps must be > 0")
        self.initial_learning_rate = float(initial_learning_rate)
        self.decay_steps = float(decay_steps)
        self.power = float(power)

    def __call__(self, step: Any) -> Any:
        t = ops.cast(step, "float32")
        return self.initial_learning_rate / ops.power(1.0 + t / self.decay_steps, self.power)

    def get_config(self) -> dict[str, Any]:
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_steps": self.decay_steps,
            "power": self.power,
        }


@keras.saving.register_keras_serializable(package="hpsearch")
class OneCycleSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """1cycle: linear from ``lr/start_divisor`` up to ``lr`` over the first half of the steps,
    back down to ``lr/start_divisor`` by ``(1 - final_fraction)`` of them, then linearly down to
    ``lr/final_divisor`` at ``total_steps`` (and constant after).
    """

    def __init__(
        self,
        max_learning_rate: float,
        total_steps: int,
        start_divisor: float = 10.0,
        final_divisor: float = 1000.0,
        final_fraction: float = 0.1,
    ) -> None:
        if total_steps < 1:
            raise ValueError("total_steps must be >= 1")
        if not 0.0 <= final_fraction < 0.5:
            raise ValueError("final_fraction must be in [0, 0.5)")
        self.max_learning_rate = float(max_learning_rate)
        self.total_steps = int(total_steps)
        self.start_divisor = float(start_divisor)
        self.final_divisor = float(final_divisor)
        self.final_fraction = float(final_fraction)

    @property
    def milestones(self) -> tuple[float, float, float]:
        """Steps at the peak, at the end of the way down, and at the end."""
        total = float(self.total_steps)
        return total / 2.0, total * (1.0 - self.final_fraction), total

    def __call__(self, step: Any) -> Any:
        t = ops.cast(step, "float32")
        peak, down_end, end = self.milestones
        high = self.max_learning_rate
        low = high / self.start_divisor
        final = high / self.final_divisor

        def ramp(start: float, stop: float, v0: float, v1: float) -> Any:
            span = max(stop - start, 1e-9)
            frac = ops.clip((t - start) / span, 0.0, 1.0)
            return v0 + (v1 - v0) * frac

        return ops.where(
            t < peak,
            ramp(0.0, peak, low, high),
            ops.where(
                t < down_end, ramp(peak, down_end, high, low), ramp(down_end, end, low, final)
            ),
        )

    def get_config(self) -> dict[str, Any]:
        return {
            "max_learning_rate": self.max_learning_rate,
            "total_steps": self.total_steps,
            "start_divisor": self.start_divisor,
            "final_divisor": self.final_divisor,
            "final_fraction": self.final_fraction,
        }


def exponential_schedule(
    learning_rate: float, decay_steps: float
) -> keras.optimizers.schedules.ExponentialDecay:
    """``lr * 0.1 ** (step / decay_steps)``."""
    return keras.optimizers.schedules.ExponentialDecay(learning_rate, decay_steps, 0.1)


def piecewise_schedule(
    learning_rate: float,
    boundary_epochs: list[int],
    multipliers: list[float],
    steps_per_epoch: int,
) -> keras.optimizers.schedules.PiecewiseConstantDecay:
    """``lr * multipliers[i]`` from ``boundary_epochs[i-1]`` epochs on (step boundaries)."""
    boundaries = [int(b * steps_per_epoch) for b in boundary_epochs]
    values = [float(learning_rate * m) for m in multipliers]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
