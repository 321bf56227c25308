"""A study's learning curves: per variant, the objective at each epoch averaged over the seeds
that reached it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def mean_curves(
    variant_of: Mapping[int, str | None], epochs: Mapping[int, Sequence[float | None]]
) -> dict[str, list[float | None]]:
    """Variant -> mean objective per epoch (None where no seed has a finite value)."""
    sums: dict[str, list[tuple[float, int]]] = {}
    for number, values in epochs.items():
        variant = variant_of.get(number)
        if variant is None:
            continue
        acc = sums.setdefault(variant, [])
        acc.extend([(0.0, 0)] * (len(values) - len(acc)))
        for i, value in enumerate(values):
            if value is not None and math.isfinite(value):
                total, n = acc[i]
                acc[i] = (total + value, n + 1)
    return {v: [t / n if n else None for t, n in acc] for v, acc in sums.items()}
