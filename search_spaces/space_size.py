"""How big a spec's search space is, counted without building it: a grid's points, and the
dimensions a Bayesian search explores (which set its random start).

A parameter's value count is arithmetic (``(max - min) // step + 1``, or the number of
multiplications by ``step`` from ``min`` to ``max`` with log sampling), the way Keras Tuner
enumerates it, and a grid's size is the product over every hyperparameter the spec declares: a
per-layer parameter once per possible layer. Conditional parameters (a leaky slope searched only
with leaky_relu) count as if always active, so this is an upper bound; it is exact for specs
without conditions. ``max_grid_points`` is checked at submission, so no dispatch ever meets a
grid that costs more than that to walk.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from search_spaces.layer_spec import LAYER_PARAMETERS
from search_spaces.params import AnyParam, Choice, Fixed, FloatRange, IntRange, is_fixed

if TYPE_CHECKING:
    from search_spaces.schema import JobSpec

#: the count of a range whose step is too small for a float to count its values.
OVERFLOW = 10**400

#: a per-layer parameter brings these children per layer too (``hyperparameters.py``).
PER_LAYER_CHILDREN = {
    "activation": ("leaky_alpha", "rrelu_lower", "rrelu_upper"),
    "kernel_initializer": (
        "variance_scaling.scale",
        "variance_scaling.mode",
        "variance_scaling.distribution",
    ),
}


def value_count(param: AnyParam) -> int | None:
    """How many values the parameter can take (None: a continuous range)."""
    if isinstance(param, Fixed):
        return 1
    if isinstance(param, Choice):
        return len(param.values)
    if param.min == param.max:
        return 1
    if isinstance(param, IntRange):
        return (param.max - param.min) // param.step + 1  # type: ignore[operator]
    if isinstance(param, FloatRange):
        if param.step is None:
            return None
        if param.sampling == "linear":
            steps = (param.max - param.min) // param.step  # type: ignore[operator]
        else:
            steps = math.log(param.max / param.min, param.step) + 1e-8  # type: ignore[operator]
        # a step like 1e-320 makes the count overflow a float: more than any limit
        return int(steps) + 1 if math.isfinite(steps) else OVERFLOW
    raise TypeError(f"unknown parameter type {type(param).__name__}")


def _per_layer_fields(spec: JobSpec) -> set[str]:
    per_layer = [n for n in ("units", *LAYER_PARAMETERS) if spec.model.is_per_layer(n)]
    fields = {f"model.{name}" for name in per_layer}
    for name in per_layer:
        fields |= {f"model.{child}" for child in PER_LAYER_CHILDREN.get(name, ())}
    return fields


def grid_points(spec: JobSpec) -> int | None:
    """The number of combinations a grid search over ``spec`` can walk (an upper bound), or
    None if some searched parameter is continuous."""
    per_layer = _per_layer_fields(spec)
    depth = spec.model.max_depth
    points = 1
    for name, param in spec.iter_params():
        count = value_count(param)
        if count is None:
            return None
        points *= count**depth if name in per_layer else count
    return points


def searched_dimensions(spec: JobSpec) -> int:
    """How many hyperparameters a search explores: the searched (not fixed) ones, a per-layer
    one once per possible layer."""
    per_layer = _per_layer_fields(spec)
    depth = spec.model.max_depth
    return sum(
        depth if name in per_layer else 1
        for name, param in spec.iter_params()
        if not is_fixed(param)
    )


def default_initial_points(dimensions: int, max_trials: int) -> int:
    """A Bayesian search's random start when the spec sets none: Keras Tuner's 3 per searched
    dimension, but at most a quarter of the budget (and at least 2), so that the Gaussian
    process chooses most trials. Keras Tuner's own rule made a 30-trial search with per-layer
    parameters all random."""
    return min(max_trials, max(2, min(3 * dimensions, math.ceil(max_trials / 4))))
