"""The job's pruner (``search.pruner``), judging a trial after each of its epochs from the
epochs every worker stored: Optuna's own pruners (``MedianPruner``, ``SuccessiveHalvingPruner``)
fed the job's learning curves in an in-memory study, so their semantics are Optuna's and the
decisions hold across workers and restarts (nothing but the stored epochs is needed).

ASHA keeps, per trial, the value it had at each rung it reached (Optuna stores it as the
trial's system attribute ``completed_rung_<k>`` when the pruner looks at that epoch). The pruner
looks at every epoch, so that value is the objective at the rung's epoch, and is read back from
the epochs rather than stored. A trial's curve is its first execution's; the trial judged is
judged by its current execution's.

Runs in the worker's pool process after the epoch is recorded; needs no TensorFlow.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from db.models import TrialStatus
from db.repositories.pruning import TrialCurve, trial_curves
from search_spaces.direction import Direction
from search_spaces.schema import JobSpec
from search_spaces.search_stops import AshaPrunerSpec, MedianPrunerSpec
from worker.optuna_trials import in_memory_study, optuna_state

log = logging.getLogger(__name__)

RUNG_KEY = "completed_rung_{}"

#: per process, the curves of the ended trials of the last few jobs (they no longer change)
_ENDED: OrderedDict[str, dict[int, TrialCurve]] = OrderedDict()
_JOBS_KEPT = 2


@dataclass(frozen=True)
class Pruned:
    """Why a trial is stopped: at ``epoch`` (from 1), against ``against`` (None: no value)."""

    epoch: int
    against: float | None
    reason: str


class TrialPruner:
    """Judges one trial of a job after each epoch (``judge``)."""

    def __init__(self, job_id: str, spec: JobSpec, number: int, epochs: int) -> None:
        assert spec.search.pruner is not None
        self.job_id, self.number, self.epochs = job_id, number, epochs
        self.settings = spec.search.pruner
        self.objective = spec.objective
        self.direction = spec.direction
        self._execution = 0
        self._values: dict[int, float] = {}

    def judge(self, execution: int, epoch: int, metrics: dict[str, float]) -> Pruned | None:
        """After epoch ``epoch`` (Keras's, from 0) of ``execution``: why to stop, or None.
        Never on the trial's last epoch (it completes: nothing is left to save)."""
        if execution != self._execution:
            self._execution, self._values = execution, {}
        step = epoch + 1
        value = metrics.get(self.objective, math.nan)
        self._values[step] = value if math.isfinite(value) else math.nan
        if step >= self.epochs or not self._may_prune(step):
            return None
        others = _curves(self.job_id, self.objective, self.number)
        return self._decide(step, others)

    def _may_prune(self, step: int) -> bool:
        """Whether Optuna's pruner could stop the trial at ``step`` at all (else nothing is
        read): ASHA only at a rung, the median pruner only after its warm-up."""
        settings = self.settings
        if isinstance(settings, AshaPrunerSpec):
            return step in settings.rung_epochs(self.epochs + 1)
        return step > settings.warmup_epochs

    def _decide(self, step: int, others: list[TrialCurve]) -> Pruned | None:
        import optuna

        settings = self.settings
        study = in_memory_study(self.direction)
        own: dict[int, float] = {}
        if isinstance(settings, MedianPrunerSpec):
            pruner: Any = optuna.pruners.MedianPruner(
                n_startup_trials=settings.startup_trials,
                # steps are epochs trained (from 1): Optuna's warm-up counts them from 0
                n_warmup_steps=settings.warmup_epochs + 1,
                interval_steps=settings.interval,
            )
            study.add_trials([_frozen(c, {step}, {}) for c in others])
        else:
            pruner = optuna.pruners.SuccessiveHalvingPruner(
                min_resource=settings.min_epochs,
                reduction_factor=settings.reduction_factor,
                min_early_stopping_rate=settings.min_early_stopping_rate,
                bootstrap_count=settings.bootstrap_count,
            )
            study.add_trials([_frozen(c, set(), _rungs(settings, c.values)) for c in others])
            # the rungs this trial passed (the one at ``step`` the pruner records itself)
            own = {
                k: v
                for k, v in _rungs(settings, self._values).items()
                if settings.rung_epoch(k) < step
            }
        current = TrialCurve(self.number, TrialStatus.RUNNING, None, dict(self._values))
        study.add_trial(_frozen(current, set(current.values), own))
        trial = study.get_trials(deepcopy=False)[-1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna's experimental-feature warnings
            if not pruner.prune(study, trial):
                return None
        if isinstance(settings, MedianPrunerSpec):
            return self._median_reason(step, others)
        attrs = study.get_trials(deepcopy=False)[-1].system_attrs
        return self._asha_reason(step, others, settings, attrs)

    def _median_reason(self, step: int, others: list[TrialCurve]) -> Pruned:
        name = self.objective
        finite = [v for v in self._values.values() if not math.isnan(v)]
        if not finite:
            return Pruned(step, None, f"pruned at epoch {step}: {name} was never finite")
        best = self.direction.best(finite, key=float)
        at_step = [
            c.values[step] for c in others if c.status is TrialStatus.COMPLETED and step in c.values
        ]
        median = float(np.nanpercentile(np.array(at_step, dtype=float), 50))
        return Pruned(
            step,
            median,
            f"pruned at epoch {step} by the median pruner: its best {name} so far, {best:.4g}, "
            f"is worse than {median:.4g}, the median of {len(at_step)} completed trials at "
            "that epoch",
        )

    def _asha_reason(
        self, step: int, others: list[TrialCurve], settings: AshaPrunerSpec, attrs: dict[str, Any]
    ) -> Pruned:
        name, value = self.objective, self._values[step]
        if math.isnan(value):
            return Pruned(step, None, f"pruned at epoch {step}: {name} was not finite")
        rung = max(int(k.rsplit("_", 1)[1]) for k in attrs if k.startswith("completed_rung_"))
        competing = sorted(
            [v for c in others if (v := _rungs(settings, c.values).get(rung)) is not None] + [value]
        )
        if len(competing) <= settings.bootstrap_count:
            return Pruned(
                step,
                None,
                f"pruned at epoch {step}: only {len(competing)} trials reached rung {rung}, "
                f"not more than bootstrap_count ({settings.bootstrap_count})",
            )
        keep = max(len(competing) // settings.reduction_factor, 1)
        cutoff = competing[-keep] if self.direction is Direction.MAX else competing[keep - 1]
        return Pruned(
            step,
            cutoff,
            f"pruned at epoch {step} by asha (rung {rung}): its {name}, {value:.4g}, is not "
            f"among the best {keep} of the {len(competing)} trials that reached that rung "
            f"(needed {cutoff:.4g})",
        )


def _rungs(settings: AshaPrunerSpec, values: dict[int, float]) -> dict[int, float]:
    """The value a curve had at each ASHA rung it reached (the rungs are consecutive: a trial
    stopped at one reaches no later one)."""
    found: dict[int, float] = {}
    # Optuna prunes a trial whose value is NaN at a rung before recording it there
    while (step := settings.rung_epoch(len(found))) in values and not math.isnan(values[step]):
        found[len(found)] = values[step]
    return found


def _frozen(curve: TrialCurve, steps: set[int], rungs: dict[int, float]) -> Any:
    """The curve as an Optuna trial holding only what the pruner reads: its state, the
    values at ``steps`` and the values at its ASHA ``rungs``."""
    from optuna.trial import create_trial

    state, value = optuna_state(curve.status, curve.score)
    return create_trial(
        state=state,
        value=value,
        intermediate_values={s: v for s, v in curve.values.items() if s in steps},
        system_attrs={RUNG_KEY.format(k): v for k, v in rungs.items()},
    )


def _curves(job_id: str, objective: str, number: int) -> list[TrialCurve]:
    """The job's other trials' curves: the ended ones this process read before, kept; the
    others read now."""
    ended = _ENDED.setdefault(job_id, {})
    _ENDED.move_to_end(job_id)
    while len(_ENDED) > _JOBS_KEPT:
        _ENDED.popitem(last=False)
    fresh = trial_curves(job_id, objective, set(ended), skip=number)
    ended.update({c.number: c for c in fresh if c.ended})
    return [c for n, c in ended.items() if n != number] + [c for c in fresh if not c.ended]


def trial_pruner(
    job_id: str, spec: JobSpec, number: int, values: dict[str, Any]
) -> TrialPruner | None:
    """The pruner of trial ``number`` (its ``values``), if the job has one; a confirmation run
    has none (the caller does not ask)."""
    if spec.search.pruner is None:
        return None
    epochs = int(values.get("epochs") or spec.max_epochs)
    return TrialPruner(job_id, spec, number, epochs)
