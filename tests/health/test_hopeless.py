"""When a trial is hopeless (``health.hopeless``): read from its epochs as they come."""

from __future__ import annotations

import math
from typing import Any

from health.hopeless import at_baseline_streak, hopeless
from health.verdicts import EpochRecord

BASELINE = 0.65  # the majority class's accuracy


def _epochs(
    scores: list[float], losses: list[float], health: dict[int, Any] | None = None
) -> list[EpochRecord]:
    health = health or {}
    return [
        EpochRecord(i, {"val_accuracy": s, "loss": loss}, health.get(i))
        for i, (s, loss) in enumerate(zip(scores, losses, strict=True))
    ]


def _judge(records: list[EpochRecord], patience: int = 3) -> str | None:
    return hopeless(records, "val_accuracy", True, BASELINE, patience)


def test_a_net_at_the_baseline_whose_loss_has_stalled_is_hopeless() -> None:
    records = _epochs([0.65] * 4, [0.70, 0.6990, 0.6985, 0.6984])
    reason = _judge(records)
    assert reason is not None and "0.65" in reason and "training loss fell 0.1%" in reason
    assert _judge(records[:2]) is None  # not for as long as the patience yet
    constant = {3: {"out_std": 1e-6, "y_std": 1.0, "layers": [{"name": "dense_0", "same": 0.0}]}}
    assert "with constant predictions" in (_judge(_epochs([0.65] * 4, [0.7] * 4, constant)) or "")


def test_a_net_at_the_baseline_still_learning_is_left_alone() -> None:
    # slow to start: the majority rate for three epochs, the loss falling fast...
    learning = _epochs([0.65, 0.65, 0.65], [0.70, 0.66, 0.62])
    assert _judge(learning) is None
    # ...even with constant predictions so far (the output layer's bias learns first)
    constant = {2: {"out_std": 1e-6, "y_std": 1.0, "layers": [{"name": "dense_0", "same": 0.0}]}}
    assert _judge(_epochs([0.65] * 3, [0.70, 0.66, 0.62], constant)) is None
    beaten = _epochs([0.65, 0.66, 0.65], [0.70, 0.6999, 0.6998])  # once above: no streak
    assert _judge(beaten) is None
    assert at_baseline_streak(beaten, "val_accuracy", True, BASELINE) == 1


def test_identical_units_on_a_probe_decide_it_however_the_loss_moves() -> None:
    identical = {1: {"out_std": 0.2, "layers": [{"name": "dense_0", "same": 1.0}]}}
    falling = [0.70, 0.66, 0.62]
    assert "identical" in (_judge(_epochs([0.65] * 3, falling, identical)) or "")


def test_an_objective_never_finite_for_the_patience_is_hopeless() -> None:
    records = _epochs([math.nan] * 3, [0.7, 0.6, 0.5])
    assert "not finite" in (_judge(records) or "")


def test_no_baseline_means_only_non_finite_objectives_stop_a_trial() -> None:
    records = _epochs([0.65] * 5, [0.7] * 5)
    assert hopeless(records, "val_accuracy", True, None, 3) is None


def test_a_minimized_objective_at_the_baseline_or_worse() -> None:
    # a regression stuck at the mean's squared error
    records = [EpochRecord(i, {"val_loss": 120.0 + i, "loss": 100.0}) for i in range(4)]
    assert hopeless(records, "val_loss", False, 118.0, 3) is not None
    better = [EpochRecord(i, {"val_loss": 60.0, "loss": 50.0}) for i in range(4)]
    assert hopeless(better, "val_loss", False, 118.0, 3) is None
