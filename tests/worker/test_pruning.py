"""``search.pruner``: the median pruner and ASHA judge a trial after each epoch from the job's
epochs as stored, with Optuna's semantics."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import optuna
import pytest

from db.models import JobStatus, TrialStatus
from db.repositories.pruning import TrialCurve
from tests.worker.helpers import create_job, drive, get_epochs, get_job, get_trials
from worker import pruning
from worker.pruning import TrialPruner
from worker.specs import parse_spec


def _grid_spec(pruner: dict[str, Any], epochs: int) -> dict[str, Any]:
    """Digits with a grid over learning rates: two that learn, then ones that cannot."""
    return {
        "dataset": {"name": "digits", "max_rows": 400, "split_seed": 1},
        "model": {"depth": 1, "units": 16},
        "optimizer": {
            "learning_rate": {"type": "choice", "values": [0.03, 0.01, 1e-6, 2e-6, 0.02]}
        },
        "training": {"epochs": epochs, "batch_size": 32, "early_stopping": {"enabled": False}},
        "search": {"algorithm": "grid", "max_trials": 5, "seed": 1, "pruner": pruner},
    }


def _curves(job_id: str) -> dict[int, dict[int, float]]:
    """Each trial's stored val_accuracy by epochs trained (from 1)."""
    by_id = {t.id: t.number for t in get_trials(job_id)}
    curves: dict[int, dict[int, float]] = {}
    for e in get_epochs(job_id):
        if e.execution == 0:
            curves.setdefault(by_id[e.trial_id], {})[e.epoch + 1] = e.metrics["val_accuracy"]
    return curves


def test_the_median_pruner_stops_trials_below_the_completed_trials_median(
    database_url: str,
) -> None:
    spec = _grid_spec({"kind": "median", "startup_trials": 2, "warmup_epochs": 1}, epochs=4)
    job_id = create_job(spec)
    drive(job_id)
    job, trials, curves = get_job(job_id), get_trials(job_id), _curves(job_id)
    assert job.status is JobStatus.SUCCEEDED and job.ended_by == "max_trials"
    pruned = [t for t in trials if t.status is TrialStatus.PRUNED]
    # the rates that cannot learn are stopped, and none of those that learn
    assert {t.hyperparameters["learning_rate"] for t in pruned} == {1e-6, 2e-6}
    assert job.trials_pruned == len(pruned) == 2
    for trial in pruned:
        step = trial.pruned_epoch
        assert step is not None and 1 <= step < 4 and trial.epochs_run == step
        completed = [
            curves[t.number][step]
            for t in trials
            if t.status is TrialStatus.COMPLETED and t.number < trial.number
        ]
        assert len(completed) >= 2
        assert trial.pruned_against == pytest.approx(float(np.median(completed)))
        assert max(curves[trial.number].values()) < trial.pruned_against
        assert "median" in trial.failure_reason and f"epoch {step}" in trial.failure_reason
        # it ends with its best epoch's score, as a completed trial would
        assert trial.score == pytest.approx(max(curves[trial.number].values()))


def test_asha_keeps_a_trial_only_in_the_best_share_of_its_rung(sqlite_url: str) -> None:
    spec = _grid_spec({"kind": "asha", "min_epochs": 1, "reduction_factor": 2}, epochs=5)
    job_id = create_job(spec)
    drive(job_id)
    job, trials, curves = get_job(job_id), get_trials(job_id), _curves(job_id)
    assert job.status is JobStatus.SUCCEEDED
    pruned = [t for t in trials if t.status is TrialStatus.PRUNED]
    assert {1e-6, 2e-6} <= {t.hyperparameters["learning_rate"] for t in pruned}
    for trial in pruned:
        rung_epoch = trial.pruned_epoch
        assert rung_epoch in (1, 2, 4)  # rungs at 1 x 2^k epochs
        # the trials that reached the rung before it (run one after another here)
        competing = sorted(
            [
                curves[t.number][rung_epoch]
                for t in trials
                if t.number < trial.number and rung_epoch in curves[t.number]
            ]
            + [curves[trial.number][rung_epoch]]
        )
        keep = max(len(competing) // 2, 1)
        assert trial.pruned_against == pytest.approx(competing[-keep])
        assert curves[trial.number][rung_epoch] < trial.pruned_against
    for trial in trials:
        if trial.status is TrialStatus.COMPLETED:
            assert trial.epochs_run == 5 and trial.pruned_epoch is None


def _optuna_replay(
    pruner: optuna.pruners.BasePruner, curves: list[list[float]], maximize: bool
) -> list[int | None]:
    """Optuna run in-process, trials one after another: where each trial is pruned."""
    study = optuna.create_study(direction="maximize" if maximize else "minimize", pruner=pruner)
    stops: list[int | None] = []
    for curve in curves:
        trial = study.ask()
        stop = None
        for step, value in enumerate(curve, start=1):
            trial.report(value, step)
            if step < len(curve) and trial.should_prune():
                stop = step
                break
        if stop is None:
            study.tell(trial, curve[-1])
        else:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        stops.append(stop)
    return stops


def _service_replay(
    spec_json: dict[str, Any], curves: list[list[float]], monkeypatch: pytest.MonkeyPatch
) -> list[int | None]:
    """The service's pruner fed the same curves as stored rows (no database: the rows read
    are these)."""
    spec = parse_spec(spec_json)
    stored: list[TrialCurve] = []
    monkeypatch.setattr(pruning, "_curves", lambda *_: list(stored))
    stops: list[int | None] = []
    for number, curve in enumerate(curves):
        pruner = TrialPruner("job", spec, number, len(curve))
        stop = None
        for epoch, value in enumerate(curve):
            if pruner.judge(0, epoch, {"val_loss": value}) is not None:
                stop = epoch + 1
                break
        trained = curve[: stop or len(curve)]
        status = TrialStatus.COMPLETED if stop is None else TrialStatus.PRUNED
        score = min(trained)
        stored.append(TrialCurve(number, status, score, dict(enumerate(trained, start=1))))
        stops.append(stop)
    return stops


@pytest.mark.parametrize("kind", ["median", "asha"])
def test_the_pruners_decide_as_optuna_does_in_process(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(7)
    curves = []
    for _ in range(30):
        start, rate = rng.uniform(0.5, 2.0), rng.uniform(0.02, 0.4)
        curves.append([start * math.exp(-rate * s) + rng.gauss(0, 0.03) for s in range(12)])
    if kind == "median":
        settings = {"kind": "median", "startup_trials": 3, "warmup_epochs": 2, "interval": 2}
        # Optuna's warm-up counts steps from 0; the replay's steps are epochs trained
        reference = optuna.pruners.MedianPruner(
            n_startup_trials=3, n_warmup_steps=3, interval_steps=2
        )
    else:
        settings = {"kind": "asha", "min_epochs": 1, "reduction_factor": 3}
        reference = optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    spec = {
        "dataset": {"name": "diabetes"},
        "model": {"units": {"type": "choice", "values": [8, 16]}},
        "training": {"epochs": 12},
        "search": {"algorithm": "random", "max_trials": 30, "pruner": settings},
    }
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    expected = _optuna_replay(reference, curves, maximize=False)
    assert any(expected) and not all(expected)  # a case that tells pruning from none
    assert _service_replay(spec, curves, monkeypatch) == expected
