"""TPE (Optuna's ``TPESampler``) as a search algorithm, behind the same interface as Keras
Tuner's (``propose`` / ``report`` / ``state``).

Each proposal builds an in-memory Optuna study from the job's trial rows as stored (the caller
holds the job's lock): completed trials with their scores, pruned ones with the score at the
epoch they stopped, failed ones as failed, and the trials in flight as running, which the
sampler's constant liar counts as bad, so parallel workers are not sent the same point. The
study then asks one trial, walking the Keras Tuner space in declaration order so a conditional
hyperparameter is suggested only when its parent activates it. Nothing is kept between
proposals but how many were made: the rows are the state.

Deterministic under ``search.seed``: proposal ``n`` samples with a seed derived from it and
``n``, so the same history gives the same point.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import keras_tuner as kt
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState, create_trial

from db.repositories.search import SearchRecord
from search_spaces.hyperparameters import build_hyperparameters
from search_spaces.schema import JobSpec
from worker.optuna_trials import in_memory_study, optuna_state
from worker.training.oracle import Proposal
from worker.training.stored_trials import LoadRecords


def distribution(hp: Any) -> BaseDistribution | None:
    """The Optuna distribution of a Keras Tuner hyperparameter (None: fixed, not sampled)."""
    if isinstance(hp, kt.engine.hyperparameters.Fixed):
        return None
    if isinstance(hp, kt.engine.hyperparameters.Boolean):
        return CategoricalDistribution([False, True])
    if isinstance(hp, kt.engine.hyperparameters.Choice):
        return CategoricalDistribution(list(hp.values))
    log = hp.sampling in ("log", "reverse_log")  # reverse_log: see ``reflected``
    if isinstance(hp, kt.engine.hyperparameters.Int):
        return IntDistribution(hp.min_value, hp.max_value, log=log, step=1 if log else hp.step or 1)
    if log and hp.step:  # Keras Tuner reads a log range's step as a multiplier
        values, value = [], hp.min_value
        while value <= hp.max_value * (1 + 1e-9):
            values.append(value)
            value *= hp.step
        return CategoricalDistribution(values)
    return FloatDistribution(hp.min_value, hp.max_value, log=log, step=hp.step or None)


def reflected(hp: Any) -> bool:
    """A ``reverse_log`` range (crowded at its top: a momentum near 1): Optuna samples its
    reflection ``min + max - value`` on a log scale."""
    return getattr(hp, "sampling", None) == "reverse_log"


def seed_of(search_seed: int | None, number: int) -> int | None:
    """Proposal ``number``'s sampling seed (None: unseeded)."""
    return None if search_seed is None else (search_seed * 1_000_003 + number) % 2**32


class TpeSearch:
    """A job's TPE search: ``max_trials`` proposals over the spec's space."""

    def __init__(self, spec: JobSpec, state: dict[str, Any] | None, load: LoadRecords) -> None:
        self.spec = spec
        self.proposed = int((state or {}).get("proposed", 0))
        self._load = load
        self._space = build_hyperparameters(spec)
        self._distributions = {h.name: distribution(h) for h in self._space.space}
        self._reflected = {
            h.name: (h.min_value, h.max_value) for h in self._space.space if reflected(h)
        }

    def propose(self) -> Proposal:
        """The next trial, sampled against every stored trial; done after ``max_trials``."""
        if self.proposed >= self.spec.search.max_trials:
            return Proposal(done=True)
        number = self.proposed
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # multivariate/group/constant_liar are experimental
            study = self._study(number)
            trial = study.ask()
            values: dict[str, Any] = {}
            for hp in self._space.space:
                if all(c.is_active(values) for c in hp.conditions):
                    dist = self._distributions[hp.name]
                    value = hp.value if dist is None else _suggest(trial, hp.name, dist)
                    values[hp.name] = self._reflect(hp.name, value)
        self.proposed += 1
        return Proposal(number, values)

    def report(
        self,
        number: int,
        score: float | None,
        step: int,
        failure: str | None,
        pruned: bool = False,
    ) -> None:
        """A trial ended: nothing to do, its row is what the next proposal reads."""

    def state(self) -> dict[str, Any]:
        return {"proposed": self.proposed}

    def _study(self, number: int) -> optuna.Study:
        multivariate = self.spec.search.multivariate
        sampler = optuna.samplers.TPESampler(
            seed=seed_of(self.spec.search.seed, number),
            n_startup_trials=self.spec.initial_points,
            multivariate=multivariate,
            group=multivariate,
            constant_liar=True,
        )
        study = in_memory_study(self.spec.direction, sampler=sampler)
        study.add_trials([self._frozen(r) for _, r in sorted(self._load(None).items())])
        return study

    def _frozen(self, record: SearchRecord) -> Any:
        state, value = optuna_state(record.status, record.score)
        params = {
            name: self._reflect(name, value)
            for name, value in record.values.items()
            if self._distributions.get(name) is not None
        }
        steps = {}
        score = record.score
        if state is TrialState.PRUNED and score is not None and math.isfinite(score):
            # Optuna ranks a pruned trial by the last step it reached and its value there
            steps = {record.last_epoch or (record.best_epoch or 0) + 1: score}
        return create_trial(
            state=state,
            value=value,
            params=params,
            distributions={name: self._distributions[name] for name in params},
            intermediate_values=steps,
        )

    def _reflect(self, name: str, value: Any) -> Any:
        """A ``reverse_log`` value to the space Optuna samples, or back (its own inverse)."""
        if name not in self._reflected:
            return value
        low, high = self._reflected[name]
        return min(max(low + high - value, low), high)


def _suggest(trial: optuna.Trial, name: str, dist: BaseDistribution) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return trial.suggest_categorical(name, dist.choices)
    if isinstance(dist, IntDistribution):
        return trial.suggest_int(name, dist.low, dist.high, step=dist.step, log=dist.log)
    assert isinstance(dist, FloatDistribution)
    return trial.suggest_float(name, dist.low, dist.high, step=dist.step, log=dist.log)
