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
import warnings
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

#: fewer completed trials than this and importance says nothing worth showing.
MIN_TRIALS = 4

_cache: dict[tuple[str, int], dict[str, float]] = {}
_cache_lock = threading.Lock()
_computing: dict[tuple[str, int], threading.Lock] = {}


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


def cached_importances(
    job_id: str, trials: Sequence[tuple[dict[str, Any], float]], maximize: bool
) -> dict[str, float]:
    """``param_importances``, computed once per job and number of completed trials, however many
    viewers ask at once (they wait for the one computing it)."""
    key = (job_id, len(trials))
    with _cache_lock:
        if key in _cache:
            return _cache[key]
        computing = _computing.setdefault(key, threading.Lock())
    with computing:
        with _cache_lock:
            if key in _cache:
                return _cache[key]
        try:
            found = param_importances(trials, maximize)
        except (ValueError, RuntimeError) as error:
            log.warning("importance of job %s not computed: %s", job_id, error)
            found = {}
        with _cache_lock:
            if len(_cache) > 256:
                _cache.clear()
            _cache[key] = found
            _computing.pop(key, None)
    return found
