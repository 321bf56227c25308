"""When to give up on a trial while it trains: a network that cannot learn spends the rest of
its epochs for nothing (on Pima, adadelta and SGD at 1e-3 sat at the majority rate for every
epoch of every trial). Read after each epoch from the epochs recorded so far, as the verdicts
read them (``health.verdicts.EpochRecord``).

A trial is hopeless after ``patience`` epochs in a row with:

- its objective not finite (a loss that is itself NaN/inf is divergence, stopped at once); or
- its objective no better than a constant prediction's (the job's baseline,
  ``health.baseline``), and the network showing it is stuck: a layer of identical units on the
  last probe among those epochs, or its training loss fallen by less than
  ``LOSS_STALL_SHARE`` over them.

Never on the last allowed epoch (nothing is left to save), and only for a search: a single
configuration or a study's variant trains to the end (``HopelessWatch``).

A net that is slow to start but learning (its loss falling, its predictions varying) is left
alone; ``bench/health_verdicts.py`` counts, on full runs of the labelled cases, the trials this
would have stopped that went on to beat the baseline.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from health.verdicts import (
    CONSTANT_SPREAD,
    SYMMETRIC_SHARE,
    EpochRecord,
    no_better_than,
)

#: the training loss fell by less than this share over the patience window: it has stalled.
LOSS_STALL_SHARE = 0.01


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def at_baseline_streak(
    records: Sequence[EpochRecord], objective: str, maximize: bool, baseline: float | None
) -> int:
    """How many of the last epochs in a row scored no better than the baseline."""
    streak = 0
    for record in reversed(records):
        if not no_better_than(record.metrics.get(objective), baseline, maximize):
            break
        streak += 1
    return streak


def _stuck(window: Sequence[EpochRecord]) -> str | None:
    """Why the network in these epochs is stuck, if it is: identical units on the last probe
    among them (nothing can make them differ), or a training loss that no longer falls (a net
    whose loss still falls is learning something, even at the baseline)."""
    probed = [r for r in window if r.health and r.health.get("layers")]
    health = (probed[-1].health or {}) if probed else {}
    if any((layer.get("same") or 0) >= SYMMETRIC_SHARE for layer in health.get("layers", [])):
        return "a layer's units are identical"
    first, last = window[0].metrics.get("loss"), window[-1].metrics.get("loss")
    if not (_finite(first) and _finite(last) and first > 0):
        return None
    fell = (first - last) / first
    if fell >= LOSS_STALL_SHARE:
        return None
    spread = health.get("out_std")
    constant = spread is not None and spread < CONSTANT_SPREAD * (health.get("y_std") or 1.0)
    return f"its training loss fell {max(fell, 0):.1%}" + (
        " with constant predictions" if constant else ""
    )


def hopeless(
    records: Sequence[EpochRecord],
    objective: str,
    maximize: bool,
    baseline: float | None,
    patience: int,
) -> str | None:
    """Why the trial should stop now (its reason, stored with it), or None to go on."""
    if len(records) < patience:
        return None
    window = records[-patience:]
    if not any(_finite(r.metrics.get(objective)) for r in window):
        return f"{objective} not finite for {patience} epochs"
    if at_baseline_streak(records, objective, maximize, baseline) < patience:
        return None
    why = _stuck(window)
    if why is None:
        return None
    return (
        f"hopeless: {objective} no better than a constant prediction's ({baseline:.4g}) for "
        f"{patience} epochs, and {why}"
    )
