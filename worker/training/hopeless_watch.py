"""The watch that stops a hopeless trial as it trains (``health.hopeless``: a network that
cannot learn), and the job's constant-prediction baseline it and the verdicts judge against."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from health.baseline import comparable, constant_baseline
from health.hopeless import at_baseline_streak, hopeless
from health.verdicts import EpochRecord
from search_spaces.datasets import Task
from search_spaces.schema import JobSpec
from worker.training.datasets import LoadedDataset


@dataclass(frozen=True)
class HopelessWatch:
    """What ``health.hopeless`` needs to judge a trial as it trains."""

    objective: str
    maximize: bool
    baseline: float | None
    patience: int
    #: the trial's last allowed epoch: never stopped there (nothing left to save)
    last_epoch: int

    def reason(self, records: list[EpochRecord]) -> str | None:
        """Why to stop now, or None."""
        if not records or records[-1].epoch >= self.last_epoch:
            return None
        return hopeless(records, self.objective, self.maximize, self.baseline, self.patience)

    def wants_probe(self, records: list[EpochRecord], metrics: dict[str, float]) -> bool:
        """Whether this epoch completes a streak at the baseline with no probe in it: probing
        it tells whether the predictions are constant."""
        current = [*records, EpochRecord(-1, metrics)]
        streak = at_baseline_streak(current, self.objective, self.maximize, self.baseline)
        window = records[-(self.patience - 1) :] if self.patience > 1 else []
        return streak >= self.patience and not any(r.health for r in window)


def hopeless_watch(
    spec: JobSpec, data: LoadedDataset, values: dict[str, Any], last_epoch: int
) -> HopelessWatch | None:
    """The trial's watch for hopelessness (None when ``training.stop_hopeless`` is off: by
    default for a single configuration, as a study's variants are)."""
    stop = spec.training.stop_hopeless
    enabled = stop.enabled if stop.enabled is not None else not spec.is_single_configuration
    if not enabled:
        return None
    baseline = job_baseline(spec, data, values)
    if not comparable(spec.objective, values.get("regularizer")):
        baseline = None
    return HopelessWatch(
        spec.objective, spec.direction == "max", baseline, stop.patience, last_epoch
    )


def job_baseline(spec: JobSpec, data: LoadedDataset, values: dict[str, Any]) -> float | None:
    """The objective of the best constant prediction (majority class, training mean...)."""
    loss = values.get("loss", "mse")
    return constant_baseline(
        spec.objective,
        spec.task is not Task.REGRESSION,
        data.y_train,
        data.y_val,
        loss if isinstance(loss, str) else "mse",
    )
