"""A Keras Tuner oracle's ``trials``, read from the job's trial rows when the algorithm asks.

Keras Tuner keeps each trial in a file of its own and the oracle's state holds only trial ids;
ours keeps each trial in its row (number, values, status, score, best epoch), and this mapping
builds the Keras Tuner ``Trial`` of a row on first access. So restoring an oracle costs what the
step reads (the trial that ended and the ones in flight; every completed trial for Bayesian
optimisation), not the whole search: the stored state stays small, and a step's cost does not
grow with the trials run.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any

import keras_tuner
from keras_tuner.src.engine import trial as trial_module

from db.models import TrialStatus
from db.repositories.search import SearchRecord

#: our statuses as Keras Tuner's (a cancelled trial never informs the search).
KT_STATUS = {
    TrialStatus.WAITING: trial_module.TrialStatus.RUNNING,
    TrialStatus.RUNNING: trial_module.TrialStatus.RUNNING,
    TrialStatus.COMPLETED: trial_module.TrialStatus.COMPLETED,
    TrialStatus.DIVERGED: trial_module.TrialStatus.FAILED,
    TrialStatus.FAILED: trial_module.TrialStatus.FAILED,
    TrialStatus.CANCELLED: trial_module.TrialStatus.STOPPED,
    # scored where it stopped: the search learns the configuration is hopeless
    TrialStatus.PRUNED: trial_module.TrialStatus.COMPLETED,
}

#: ``numbers`` (None: all) -> their rows.
LoadRecords = Callable[[list[int] | None], dict[int, SearchRecord]]


class StoredTrials(MutableMapping[str, Any]):
    """Keras Tuner trial id -> ``Trial``: the first ``count`` trial numbers are rows, built on
    first access (kept, since Keras Tuner changes them in place); new trials live in memory."""

    def __init__(self, oracle: Any, count: int, load: LoadRecords) -> None:
        self._oracle, self._count, self._load = oracle, count, load
        self._built: dict[str, Any] = {}

    def prefetch(self, keys: list[str]) -> None:
        """Build these trials from their rows in one query (the ones in flight, say)."""
        numbers = [int(k) for k in keys if k not in self._built and self._stored(k)]
        if numbers:
            self._build(self._load(numbers))

    def kt_id(self, number: int) -> str:
        """Keras Tuner's id of trial ``number`` (its number, zero-padded as Keras Tuner does)."""
        return f"{{:0{len(str(self._oracle.max_trials))}d}}".format(number)

    def _stored(self, key: str) -> bool:
        try:
            number = int(key)
        except ValueError:
            return False
        return 0 <= number < self._count and key == self.kt_id(number)

    def _build(self, records: dict[int, SearchRecord]) -> None:
        for number, record in records.items():
            key = self.kt_id(number)
            if key not in self._built:
                self._built[key] = to_kt_trial(self._oracle, key, record)

    def __getitem__(self, key: str) -> Any:
        if key not in self._built:
            if not self._stored(key):
                raise KeyError(key)
            self._build(self._load([int(key)]))
        return self._built[key]

    def __setitem__(self, key: str, trial: Any) -> None:
        self._built[key] = trial

    def __delitem__(self, key: str) -> None:
        raise TypeError("a search never forgets a trial")

    def _new(self) -> list[str]:
        return [k for k in self._built if not self._stored(k)]

    def __iter__(self) -> Iterator[str]:
        yield from (self.kt_id(n) for n in range(self._count))
        yield from self._new()

    def __len__(self) -> int:
        return self._count + len(self._new())

    def values(self) -> Any:  # type: ignore[override]
        """Every trial: the rows not built yet are read in one query."""
        if any(self.kt_id(n) not in self._built for n in range(self._count)):
            self._build(self._load(None))
        return [self[k] for k in self]

    def items(self) -> Any:  # type: ignore[override]
        return list(zip(list(self), self.values(), strict=True))


def scores_pruned(oracle: Any, score: float | None) -> bool:
    """Whether a pruned trial reaches the algorithm with its score: not without one, and not
    for Hyperband (it would promote it to a longer round, and a pruned trial keeps no
    checkpoint to resume from)."""
    return score is not None and not isinstance(oracle, keras_tuner.oracles.HyperbandOracle)


def to_kt_trial(oracle: Any, kt_id: str, record: SearchRecord) -> Any:
    """A Keras Tuner ``Trial`` as the oracle would hold it for this row."""
    # A shallow copy shares the space's definitions, which no trial changes (Keras Tuner's own
    # copy() rebuilds them from their config: ~1.5 ms a trial).
    hyperparameters = copy.copy(oracle.hyperparameters)
    hyperparameters.values = dict(record.values)
    status = KT_STATUS[record.status]
    if record.status is TrialStatus.PRUNED and not scores_pruned(oracle, record.score):
        status = trial_module.TrialStatus.FAILED
    trial = trial_module.Trial(hyperparameters=hyperparameters, trial_id=kt_id, status=status)
    trial.message = record.failure_reason
    if status == trial_module.TrialStatus.COMPLETED and record.score is not None:
        objective = oracle.objective
        trial.metrics.register(objective.name, objective.direction)
        trial.metrics.update(objective.name, record.score, step=record.best_epoch or 0)
        trial.score, trial.best_step = record.score, record.best_epoch or 0
    return trial
