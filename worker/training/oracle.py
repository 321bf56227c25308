"""The search algorithms: Keras Tuner oracles whose whole state is a JSON value the caller
stores (on the job row), never files; behind one small interface, ``Search`` (propose / report /
state), so the dispatcher needs to know nothing of Keras Tuner.

``get_db_state()`` returns one JSON-able dict, the oracle's own state: its trials are not in it
(Keras Tuner keeps those in files of their own; we read them from the job's trial rows, on
demand, through ``StoredTrials``). ``set_db_state()`` restores it in a fresh process, so any
worker can resume a search. ``save``/``_save_trial``/``reload`` (KT's files) are no-ops. Nothing
here runs SQL: the caller hands in how to read the trial rows.

Each trial gets its own Keras Tuner ``tuner_id`` (``trial-<number>``), so the oracle tracks
every in-flight trial as ongoing (Bayesian hallucinates their results, Hyperband waits for
them). A trial re-run after a crash keeps its number and values: the oracle only hears of it
again when it reports.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

import keras_tuner as kt
from keras_tuner.src.engine import trial as trial_module
from keras_tuner.src.tuners.gridsearch import LinkedList

from search_spaces.hyperparameters import build_hyperparameters
from search_spaces.schema import JobSpec
from search_spaces.space_size import grid_points
from worker.training.stored_trials import LoadRecords, StoredTrials, scores_pruned

log = logging.getLogger(__name__)

#: we record failures ourselves; Keras Tuner must never stop the search by raising.
NEVER_STOP = 10**9


class DbStateMixin:
    """File-less persistence for a ``keras_tuner.Oracle`` subclass."""

    trials: MutableMapping[str, Any]

    def save(self) -> None:
        """No files: the caller persists ``get_db_state()`` on the job row."""

    def _save_trial(self, trial: Any) -> None:
        """No files (see ``save``)."""

    def reload(self) -> None:
        raise NotImplementedError("state is restored with set_db_state()")

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        return None

    def _check_consecutive_failures(self) -> None:
        """Never stop the search for failures (we record them), and so never read every trial."""

    def get_db_state(self) -> dict[str, Any]:
        """The oracle's own state (not its trials), as plain JSON values.

        Two of Keras Tuner's per-trial maps are left out, as they only matter for what we never
        do: ``id_to_hash`` (a trial's values changing after it was proposed) and ``run_times``
        (retrying a trial, ``max_retries_per_trial`` is 0). Restored empty, they behave the same.
        """
        state = self.get_state()  # type: ignore[attr-defined]
        state["id_to_hash"], state["run_times"] = {}, {}
        state["extra"] = self._extra_state()
        return json.loads(json.dumps(state, default=_json_default))

    def set_db_state(self, state: dict[str, Any], trials: MutableMapping[str, Any]) -> None:
        """Restore what ``get_db_state`` returned (in this or another process), with the trials
        as stored. A state saved with its trials inside (before they were read from their rows)
        restores those."""
        if "trials" in state:
            self.trials = {t: trial_module.Trial.from_state(s) for t, s in state["trials"].items()}
        else:
            self.trials = trials  # type: ignore[assignment]
        self.set_state(state)  # type: ignore[attr-defined]
        self._set_extra_state(state.get("extra") or {})


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, set):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


class RandomOracle(DbStateMixin, kt.oracles.RandomSearchOracle):
    """Random search."""


class BayesianOracle(DbStateMixin, kt.oracles.BayesianOptimizationOracle):
    """Gaussian-process Bayesian optimisation (its random state is saved too)."""

    def _extra_state(self) -> dict[str, Any]:
        name, keys, pos, has_gauss, cached = self._random_state.get_state()
        return {"random_state": [name, keys.tolist(), pos, has_gauss, cached]}

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        import numpy as np

        if "random_state" in state:
            name, keys, pos, has_gauss, cached = state["random_state"]
            self._random_state.set_state(
                (name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached)
            )


class HyperbandOracle(DbStateMixin, kt.oracles.HyperbandOracle):
    """Hyperband; trials carry ``tuner/epochs``, ``tuner/initial_epoch``, ``tuner/trial_id``."""


class GridOracle(DbStateMixin, kt.oracles.GridSearchOracle):
    """Grid search. KT keeps its traversal order outside ``get_state``: we save it too."""

    def _extra_state(self) -> dict[str, Any]:
        ids = self._ordered_ids
        return {
            "populate_next": list(self._populate_next),
            "ordered_ids": {
                "memory": list(ids._memory),
                "next_index": {str(k): v for k, v in ids._next_index.items()},
                "last_index": ids._last_index,
            },
        }

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        self._populate_next = list(state.get("populate_next", []))
        saved = state.get("ordered_ids")
        ids = LinkedList()
        if saved:
            ids._memory = list(saved["memory"])
            ids._data_to_index = {d: i for i, d in enumerate(ids._memory)}
            for key, value in saved["next_index"].items():
                ids._next_index[None if key == "None" else int(key)] = value
            ids._last_index = saved["last_index"]
        self._ordered_ids = ids


def hyperband_trial_count(max_epochs: int, factor: int, iterations: int) -> int:
    """How many trials Keras Tuner's Hyperband schedule runs (its own bracket formulas)."""
    oracle = kt.oracles.HyperbandOracle(max_epochs=max_epochs, factor=factor)
    total = 0
    for bracket in range(oracle._get_num_brackets()):
        total += sum(oracle._get_size(bracket, r) for r in range(oracle._get_num_rounds(bracket)))
    return total * iterations


def build_oracle(spec: JobSpec) -> DbStateMixin:
    """The oracle for ``spec.search.algorithm``, seeded, with the spec's search space."""
    search = spec.search
    common: dict[str, Any] = {
        "objective": kt.Objective(spec.objective, spec.direction),
        "hyperparameters": build_hyperparameters(spec),
        "seed": search.seed,
        "max_retries_per_trial": 0,
        "max_consecutive_failed_trials": NEVER_STOP,
    }
    oracle: DbStateMixin
    if spec.is_single_configuration:
        # One model to train (with its own epochs, not a Hyperband rung): a one-trial search.
        oracle = RandomOracle(max_trials=1, **common)
    elif search.algorithm == "random":
        oracle = RandomOracle(max_trials=search.max_trials, **common)
    elif search.algorithm == "bayesian":
        oracle = BayesianOracle(
            max_trials=search.max_trials,
            num_initial_points=spec.initial_points,
            **common,
        )
    elif search.algorithm == "hyperband":
        oracle = HyperbandOracle(
            max_epochs=spec.max_epochs,
            factor=search.hyperband_factor,
            hyperband_iterations=search.hyperband_iterations,
            **common,
        )
    elif search.algorithm == "grid":
        oracle = GridOracle(max_trials=search.max_trials, **common)
    else:  # pragma: no cover - the schema forbids it
        raise ValueError(f"unknown algorithm {search.algorithm!r}")
    oracle.verbose = 0  # type: ignore[attr-defined]
    return oracle


def planned_trials(spec: JobSpec) -> int:
    """The number of trials the search will run at most (for progress), its confirmation
    runs included."""
    searched = _searched_trials(spec)
    confirm = spec.search.confirm
    return searched + (min(confirm.top_k, searched) * confirm.seeds if confirm else 0)


def _searched_trials(spec: JobSpec) -> int:
    search = spec.search
    if spec.study is not None:
        return spec.study.trials
    if spec.is_single_configuration:
        return 1
    if search.algorithm == "hyperband":
        return hyperband_trial_count(
            spec.max_epochs, search.hyperband_factor, search.hyperband_iterations
        )
    if search.algorithm == "grid":
        return min(search.max_trials, grid_points(spec) or search.max_trials)
    return search.max_trials


@dataclass(frozen=True)
class Proposal:
    """What the search algorithm wants next: a new trial (``number`` and ``values``), nothing
    for now (it waits for trials in flight: Hyperband's rounds), or nothing ever (``done``)."""

    number: int | None = None
    values: dict[str, Any] | None = None
    done: bool = False


class SearchAlgorithm(Protocol):
    """What the dispatcher asks of a search algorithm (Keras Tuner's oracles through ``Search``,
    Optuna's TPE, a study's plan): a new algorithm is a module implementing this."""

    def propose(self) -> Proposal:
        """The next trial, nothing for now, or done."""
        ...

    def report(
        self, number: int, score: float | None, step: int, failure: str | None, pruned: bool = False
    ) -> None:
        """Trial ``number`` ended: completed or pruned with ``score`` at epoch ``step``, or not."""
        ...

    def state(self) -> dict[str, Any]:
        """The JSON state stored on the job, from which the algorithm carries on."""
        ...


class Search:
    """One job's search algorithm, restored from its stored state and its ``count`` trial rows
    (read with ``load`` when the algorithm needs them)."""

    def __init__(
        self, spec: JobSpec, state: dict[str, Any] | None, count: int, load: LoadRecords
    ) -> None:
        self.spec = spec
        self.oracle = build_oracle(spec)
        self.trials = StoredTrials(self.oracle, count, load)
        if state:
            self.trials.prefetch(list((state.get("ongoing_trials") or {}).values()))
            self.oracle.set_db_state(state, self.trials)
        else:
            self.oracle.trials = self.trials  # type: ignore[attr-defined]

    def propose(self) -> Proposal:
        """The next trial to run, if the algorithm has one now."""
        kt_trial = self.oracle.create_trial(f"trial-{len(self.oracle.trials)}")  # type: ignore[attr-defined]
        if kt_trial.status == "RUNNING":
            return Proposal(int(kt_trial.trial_id), dict(kt_trial.hyperparameters.values))
        return Proposal(done=kt_trial.status == "STOPPED")

    def report(
        self,
        number: int,
        score: float | None,
        step: int,
        failure: str | None,
        pruned: bool = False,
    ) -> None:
        """A trial ended: completed (or ``pruned``) with a finite ``score`` (at epoch
        ``step``), or not."""
        if pruned and not scores_pruned(self.oracle, score):
            score = None
        kt_id = self.trials.kt_id(number)
        if kt_id not in self.oracle.trials:  # pragma: no cover - rows come from the oracle
            log.error("trial %s unknown to the search algorithm", number)
            return
        kt_trial = self.oracle.trials[kt_id]
        if score is not None and math.isfinite(score):
            self.oracle.update_trial(kt_id, {self.spec.objective: score}, step=step)  # type: ignore[attr-defined]
            kt_trial.status = "COMPLETED"
        else:
            kt_trial.status = "FAILED"
            kt_trial.message = failure
        self.oracle.end_trial(kt_trial)  # type: ignore[attr-defined]

    def state(self) -> dict[str, Any]:
        """The state to store, from which ``Search(spec, state)`` carries on."""
        return self.oracle.get_db_state()
