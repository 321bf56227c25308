"""Hyperparameter importance: Optuna's PED-ANOVA evaluator fed a job's completed trials.

The trials are copied into an in-memory Optuna study; each hyperparameter's distribution is
read from the values the trials took (a number that spans two decades or more is log-scaled,
as learning rates are searched). Hyperparameters some trials lack (a layer's units when the
trial had fewer layers) are left out, as Optuna leaves out what is not in every trial.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)

#: fewer completed trials than this and importance says nothing worth showing.
MIN_TRIALS = 4

#: importance is computed again once the completed trials grew by a tenth, at least by this...
MIN_NEW_TRIALS = 5
#: ...or once the last result is this old (seconds).
MAX_AGE_S = 30.0

#: importances by hyperparameter, and on how many completed trials they were computed
Importances = tuple[dict[str, float], int]

_cache: dict[str, tuple[int, dict[str, float], float]] = {}
_cache_lock = threading.Lock()
_computing: dict[str, threading.Lock] = {}


def is_number(value: Any) -> bool:
    """A real number (bools are categories)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def is_log_scaled(values: Sequence[float]) -> bool:
    """Positive numbers spanning at least two decades and crowded at the bottom of their range
    (half of them in its lowest tenth), as log-uniform samples are; a uniform range that
    happens to start near zero (a dropout rate) is not."""
    if not values or min(values) <= 0 or max(values) / min(values) < 100:
        return False
    low, high = min(values), max(values)
    ordered = sorted(values)
    return ordered[len(ordered) // 2] < low + 0.1 * (high - low)


def _distribution(values: list[Any]) -> Any:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if all(is_number(v) for v in values):
        low, high = min(values), max(values)
        log_scale = is_log_scaled(values)
        if all(isinstance(v, int) for v in values):
            return IntDistribution(int(low), int(high), log=log_scale)
        return FloatDistribution(float(low), float(high), log=log_scale)
    return CategoricalDistribution(sorted({str(v) for v in values}))


def _as_param(value: Any, distribution: Any) -> Any:
    from optuna.distributions import CategoricalDistribution

    return str(value) if isinstance(distribution, CategoricalDistribution) else value


def param_importances(
    trials: Sequence[tuple[dict[str, Any], float]], maximize: bool
) -> dict[str, float]:
    """``{hyperparameter: importance}`` (summing to 1, most important first) of the varying
    hyperparameters every trial has; empty under ``MIN_TRIALS`` trials or with nothing varying."""
    if len(trials) < MIN_TRIALS:
        return {}
    common = set.intersection(*(set(params) for params, _ in trials))
    varying = {
        name: [params[name] for params, _ in trials]
        for name in sorted(common)
        if len({repr(params[name]) for params, _ in trials}) > 1
    }
    if not varying:
        return {}
    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {name: _distribution(values) for name, values in varying.items()}
    study = optuna.create_study(direction="maximize" if maximize else "minimize")
    study.add_trials(
        [
            optuna.trial.create_trial(
                params={n: _as_param(p[n], d) for n, d in distributions.items()},
                distributions=distributions,
                value=score,
            )
            for p, score in trials
        ]
    )
    with warnings.catch_warnings():
        # PED-ANOVA warns that it is experimental on every call
        warnings.simplefilter("ignore")
        found = optuna.importance.get_param_importances(
            study, evaluator=PedAnovaImportanceEvaluator()
        )
    return {name: float(value) for name, value in found.items()}


def fresh_importances(job_id: str, completed: int, exact: bool = False) -> Importances | None:
    """The job's last computed importances and on how many completed trials, if still fresh
    for ``completed`` (see ``cached_importances``); None when they are to be computed again.
    Computes nothing and reads nothing."""
    with _cache_lock:
        cached = _cache.get(job_id)
    if cached is not None and (cached[0] == completed or (not exact and _fresh(cached, completed))):
        return cached[1], cached[0]
    return None


def cached_importances(
    job_id: str,
    completed: int,
    load: Callable[[], Sequence[tuple[dict[str, Any], float]]],
    maximize: bool,
    exact: bool = False,
) -> Importances:
    """``param_importances`` of the trials ``load`` returns, and on how many completed trials
    it was computed. Computed once per job however many viewers ask at once (they wait for the
    one computing it), and again only when the job's ``completed`` count grew by a tenth (at
    least ``MIN_NEW_TRIALS``) or the last result is ``MAX_AGE_S`` old: with many trials ending a
    second, recomputing at each cost the API more than everything else the page asks for. The
    trials are only loaded to compute. ``exact`` (an ended job): on every trial."""
    with _cache_lock:
        computing = _computing.setdefault(job_id, threading.Lock())
    with computing:
        fresh = fresh_importances(job_id, completed, exact)
        if fresh is not None:
            return fresh
        try:
            found = param_importances(load(), maximize)
        except (ValueError, RuntimeError) as error:
            log.warning("importance of job %s not computed: %s", job_id, error)
            found = {}
        with _cache_lock:
            if len(_cache) > 256:
                _cache.clear()
            _cache[job_id] = (completed, found, time.monotonic())
    return found, completed


def _fresh(cached: tuple[int, dict[str, float], float], count: int) -> bool:
    computed_on, _, at = cached
    if count == computed_on:
        return True
    grew = count - computed_on
    recent = time.monotonic() - at < MAX_AGE_S
    return computed_on >= MIN_TRIALS and recent and grew < max(MIN_NEW_TRIALS, computed_on // 10)
