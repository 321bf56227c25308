"""Per-layer statistics of a fixed probe batch: what the articles diagnose, as numbers.

Every function takes a hidden layer's outputs (its activations, after the activation function)
over the probe rows, as a ``rows x units`` array. The worker feeds them each recorded epoch; the
verdicts read the numbers (``health.verdicts``). The margins below define the signals; the
thresholds that turn them into verdicts are fitted on labelled runs (``bench/health_verdicts.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

#: activations whose units die: 0 (slope 0) for every negative input.
DYING = frozenset({"relu", "relu6"})
#: activations bounded on both sides, and their bounds.
BOUNDS: Mapping[str, tuple[float, float]] = {
    "sigmoid": (0.0, 1.0),
    "hard_sigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
    "softsign": (-1.0, 1.0),
}
#: an output within this of a bound (a share of the bound's span) is saturated: sigmoid's slope
#: there is under 0.01 of its peak 0.25.
SATURATION_MARGIN = 0.01
#: a unit saturated on at least this share of the probe rows counts as saturated.
SATURATED_ROWS = 0.9
#: outputs at or under this are a dying unit's zero.
DEAD_EPS = 1e-7
#: two units whose outputs agree to this share of the layer's largest output on every row are
#: identical: a constant initialization makes them exactly equal, and the last hidden layer's
#: units, which the output layer's distinct weights pull apart, drift by ~1e-5 in an epoch.
IDENTICAL_TOL = 1e-3


def dead_share(values: np.ndarray, activation: str) -> float | None:
    """Share of units that output 0 on every probe row (None: the activation cannot die)."""
    if activation not in DYING or values.shape[1] == 0:
        return None
    return float(np.mean(np.all(values <= DEAD_EPS, axis=0)))


def saturated_share(values: np.ndarray, activation: str) -> float | None:
    """Share of units stuck within ``SATURATION_MARGIN`` of a bound on most probe rows (None:
    the activation is not bounded)."""
    bounds = BOUNDS.get(activation)
    if bounds is None or values.shape[1] == 0:
        return None
    low, high = bounds
    margin = SATURATION_MARGIN * (high - low)
    near = (values <= low + margin) | (values >= high - margin)
    return float(np.mean(np.mean(near, axis=0) >= SATURATED_ROWS))


def identical_share(values: np.ndarray) -> float:
    """Share of units whose outputs equal another unit's on every probe row: 1.0 when a layer's
    units are all the same (nothing can tell them apart, nothing can learn), 0.0 for one unit.
    Units are compared with their neighbours in the order of their mean output (twins have the
    same mean): linear in the units, not quadratic."""
    units = values.shape[1]
    if units < 2:
        return 0.0
    scale = float(np.max(np.abs(values))) or 1.0
    ordered = values[:, np.argsort(values.mean(axis=0), kind="stable")]
    twins = np.max(np.abs(np.diff(ordered, axis=1)), axis=0) <= IDENTICAL_TOL * scale
    has_twin = np.zeros(units, dtype=bool)
    has_twin[:-1] |= twins
    has_twin[1:] |= twins
    return float(np.mean(has_twin))


def output_spread(outputs: np.ndarray) -> float:
    """How much the model's outputs vary over the probe rows: the largest per-output standard
    deviation (0 for a model that predicts one value whatever its input)."""
    outputs = outputs.reshape(len(outputs), -1)
    return float(np.max(np.std(outputs, axis=0))) if outputs.size else 0.0


def layer_signals(
    values: np.ndarray, activation: str, kernel: np.ndarray | None = None
) -> dict[str, Any]:
    """A hidden layer's probe statistics, compact for storage: the outputs' mean and std, and
    the shares of dead, saturated and identical units (``dead``/``sat`` None where they do not
    apply; all None when some output is not finite). Identical units are read from ``kernel``
    (inputs x units) when given: units with the same incoming weights are symmetric, where
    units that are merely all dead or all saturated output the same too."""
    values = np.asarray(values, dtype=np.float64).reshape(len(values), -1)
    if not np.all(np.isfinite(values)):  # a diverged network: nothing else is meaningful
        return {"mean": None, "std": None, "dead": None, "sat": None, "same": None}
    twins = values if kernel is None else np.asarray(kernel, dtype=np.float64)
    same = identical_share(twins) if np.all(np.isfinite(twins)) else None
    return {
        "mean": _rounded(float(np.mean(values))),
        "std": _rounded(float(np.std(values))),
        "dead": _share(dead_share(values, activation)),
        "sat": _share(saturated_share(values, activation)),
        "same": _share(same),
    }


def _rounded(value: float) -> float | None:
    return float(f"{value:.4g}") if np.isfinite(value) else None


def _share(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
