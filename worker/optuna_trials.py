"""The job's trials as Optuna sees them, for the algorithms that come from Optuna (TPE, the
pruners): each is fed an in-memory study rebuilt from the rows, never Optuna's own storage."""

from __future__ import annotations

import math
from typing import Any

from db.models import TrialStatus
from search_spaces.direction import Direction

#: our statuses that are Optuna's, by name (waiting and running: pending); the rest failed
_STATES = {
    TrialStatus.COMPLETED: "COMPLETE",
    TrialStatus.PRUNED: "PRUNED",
    TrialStatus.WAITING: "RUNNING",
    TrialStatus.RUNNING: "RUNNING",
}


def optuna_state(status: TrialStatus, score: float | None) -> tuple[Any, float | None]:
    """Optuna's ``TrialState`` of a trial, and its value (a completed trial's finite score;
    None for any other): a completed trial without one counts as failed (Optuna refuses a
    complete trial without a value)."""
    from optuna.trial import TrialState

    state = TrialState[_STATES.get(status, "FAIL")]
    if state is not TrialState.COMPLETE:
        return state, None
    if score is None or not math.isfinite(score):
        return TrialState.FAIL, None
    return state, score


def in_memory_study(direction: Direction, **kwargs: Any) -> Any:
    """A fresh Optuna study in memory (Optuna's own log lines silenced)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        storage=optuna.storages.InMemoryStorage(),
        direction="maximize" if direction is Direction.MAX else "minimize",
        **kwargs,
    )
