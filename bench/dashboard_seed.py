"""Simulated dense-net searches for the dashboard benchmarks, written twice: into a fresh database
of the service through its own models (a finished job, its trials and their epochs, as the
workers leave them) and into an Optuna study (the same trials, as ``optuna.trial.create_trial``
would record a study of the same search). Nothing is trained: every number comes from a seeded
random generator, shaped like a real search's learning curves.

The search: layers 1-3, units 32/64/128/256, activation relu/tanh/elu/selu, dropout 0-0.5,
optimizer adam/sgd/rmsprop, learning rate 1e-4..1e-1 (log), 20 epochs a trial, on Fashion-MNIST,
scored by the best epoch's ``val_accuracy`` (maximized). Two workers take the trials in turn, so
both dashboards have a timeline to draw.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

EPOCHS = 20
WORKERS = ("bench-host:4101:4107", "bench-host:4101:4108")
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
UNITS = [32, 64, 128, 256]
ACTIVATIONS = ["relu", "tanh", "elu", "selu"]
OPTIMIZERS = ["adam", "sgd", "rmsprop"]
#: where each optimizer's learning rate is best (log10), for the simulated accuracy.
BEST_LOG_LR = {"adam": -3.0, "rmsprop": -3.2, "sgd": -1.6}
FAILURES = (
    "ResourceExhaustedError: OOM when allocating tensor with shape[256,256] and type float",
    "InternalError: Failed copying input tensor to the device: stream did not block host",
)


def dense_net_spec(trials: int) -> dict[str, Any]:
    """A valid job spec of the simulated search, room for ``trials`` trials."""
    return {
        "name": f"dense-net-{trials}",
        "dataset": {"name": "fashion_mnist", "validation_split": 0.1},
        "model": {
            "input": {"flatten": True},
            "depth": {"type": "int", "min": 1, "max": 3},
            "units": {"type": "choice", "values": UNITS},
            "activation": {"type": "choice", "values": ACTIVATIONS},
            "dropout": {"type": "float", "min": 0.0, "max": 0.5},
        },
        "optimizer": {
            "name": {"type": "choice", "values": OPTIMIZERS},
            "learning_rate": {"type": "float", "min": 1e-4, "max": 1e-1, "sampling": "log"},
        },
        "training": {"epochs": EPOCHS, "batch_size": 32, "early_stopping": {"enabled": False}},
        "search": {"algorithm": "random", "max_trials": trials, "seed": 1},
    }


@dataclass
class SimTrial:
    """One simulated trial: what both dashboards are given about it."""

    number: int
    params: dict[str, Any]
    status: str  # completed | failed | diverged
    curve: list[dict[str, float]]  # one dict of METRICS per epoch run
    epoch_s: list[float]
    proposed_at: datetime
    started_at: datetime
    finished_at: datetime
    worker: str
    failure_reason: str | None = None
    parameter_count: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def score(self) -> float | None:
        """The best epoch's ``val_accuracy`` of a completed trial."""
        if self.status != "completed":
            return None
        return max(epoch["val_accuracy"] for epoch in self.curve)

    @property
    def best_epoch(self) -> int | None:
        if self.status != "completed":
            return None
        values = [epoch["val_accuracy"] for epoch in self.curve]
        return values.index(max(values))


def _params(rng: random.Random) -> dict[str, Any]:
    return {
        "depth": rng.randint(1, 3),
        "units": rng.choice(UNITS),
        "activation": rng.choice(ACTIVATIONS),
        "dropout": rng.uniform(0.0, 0.5),
        "optimizer": rng.choice(OPTIMIZERS),
        "learning_rate": 10 ** rng.uniform(-4.0, -1.0),
    }


def _plateau(params: dict[str, Any], rng: random.Random) -> float:
    """The validation accuracy a configuration levels off at (Fashion-MNIST-like: ~0.80-0.90)."""
    lr_miss = math.log10(params["learning_rate"]) - BEST_LOG_LR[params["optimizer"]]
    level = 0.895 - 0.028 * lr_miss**2
    level -= 0.06 * (params["dropout"] - 0.2) ** 2 + 0.004 * (3 - params["depth"])
    level -= {32: 0.012, 64: 0.006, 128: 0.0, 256: 0.002}[params["units"]]
    level -= {"relu": 0.0, "elu": 0.002, "selu": 0.004, "tanh": 0.007}[params["activation"]]
    return min(0.91, max(0.1, level + rng.gauss(0, 0.004)))


def _curve(params: dict[str, Any], rng: random.Random, epochs: int) -> list[dict[str, float]]:
    """Learning curves rising to the plateau, training pulling away from validation."""
    plateau = _plateau(params, rng)
    speed = 0.25 + 0.5 * min(1.0, params["learning_rate"] * 100)
    start = 0.35 + 0.3 * rng.random()
    overfit = 0.0015 * (0.5 - params["dropout"]) * params["units"] / 64
    rows = []
    for epoch in range(epochs):
        val_acc = plateau - (plateau - start) * math.exp(-speed * (epoch + 1))
        val_acc = min(0.99, max(0.05, val_acc + rng.gauss(0, 0.003)))
        gap = overfit * epoch + 0.003 * epoch
        acc = min(0.999, val_acc + gap + rng.gauss(0, 0.002))
        rows.append(
            {
                "loss": round(max(0.02, 2.4 * (1 - acc) + 0.05 + rng.gauss(0, 0.01)), 5),
                "accuracy": round(acc, 5),
                "val_loss": round(2.3 * (1 - val_acc) + 0.06 + 0.4 * gap + rng.gauss(0, 0.01), 5),
                "val_accuracy": round(val_acc, 5),
            }
        )
    return rows


def simulate(trials: int, seed: int = 0, epochs: int = EPOCHS) -> list[SimTrial]:
    """``trials`` simulated trials, taken in turn by two workers (about 3% failed, and a
    few diverged: a large learning rate with SGD or RMSprop)."""
    rng = random.Random(seed)
    start = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    free_at = {
        worker: start + timedelta(seconds=0.5 + i * 0.05) for i, worker in enumerate(WORKERS)
    }
    out = []
    for number in range(trials):
        worker = min(free_at, key=lambda w: free_at[w])
        params = _params(rng)
        proposed = free_at[worker] + timedelta(seconds=rng.uniform(0.005, 0.04))
        started = proposed + timedelta(seconds=rng.uniform(0.02, 0.12))
        width = params["units"] * params["depth"]
        epoch_cost = 0.9 + width / 300 + rng.uniform(-0.05, 0.05)
        status, reason, run = "completed", None, epochs
        roll = rng.random()
        risky = params["optimizer"] != "adam" and params["learning_rate"] > 0.04
        if roll < 0.03:
            status, reason, run = "failed", rng.choice(FAILURES), rng.randint(0, 2)
        elif risky and roll < 0.25:
            run = rng.randint(2, 8)
            status, reason = "diverged", f"loss became nan at epoch {run}"
        curve = _curve(params, rng, run)
        if status == "diverged":  # the last epoch's loss is NaN; validation falls to chance
            curve[-1].update(loss=math.nan, val_loss=math.nan, accuracy=0.1, val_accuracy=0.1)
        epoch_s = [epoch_cost * rng.uniform(0.97, 1.05) for _ in range(run)]
        finished = started + timedelta(seconds=0.35 + sum(epoch_s) + rng.uniform(0.01, 0.05))
        free_at[worker] = finished
        parameter_count = 784 * params["units"] + (params["depth"] - 1) * params["units"] ** 2
        out.append(
            SimTrial(
                number=number,
                params=params,
                status=status,
                curve=curve,
                epoch_s=epoch_s,
                proposed_at=proposed,
                started_at=started,
                finished_at=finished,
                worker=worker,
                failure_reason=reason,
                parameter_count=parameter_count + 10 * params["units"] + 10,
            )
        )
    return out


# -- the service's database ------------------------------------------------------------------


def insert_hpsearch_job(url: str, trials: list[SimTrial]) -> str:
    """Insert a finished job of ``trials`` (with every epoch row) into the database at ``url``
    (already migrated) through the service's models; returns the job's id."""
    from db.engine import session_scope
    from db.models import Epoch, Job, JobStatus, Trial, TrialStatus
    from search_spaces.hyperparameters import hyperparameters_from_values
    from search_spaces.schema import JobSpec

    spec = JobSpec.model_validate(dense_net_spec(len(trials)))
    scored = [t for t in trials if t.score is not None]
    best = max(scored, key=lambda t: t.score or 0.0)
    with session_scope(url) as session:
        job = Job(
            name=spec.name,
            status=JobStatus.SUCCEEDED,
            spec=spec.model_dump(mode="json"),
            warnings=[],
            algorithm=spec.search.algorithm,
            dataset=spec.dataset.name,
            objective=spec.objective,
            direction=spec.direction,
            max_trials=len(trials),
            trials_completed=len(scored),
            trials_failed=sum(t.status == "failed" for t in trials),
            trials_diverged=sum(t.status == "diverged" for t in trials),
            best_trial_number=best.number,
            best_score=best.score,
            dataset_info=_dataset_info(),
            attempts=1,
            created_at=trials[0].proposed_at - timedelta(seconds=0.6),
            started_at=trials[0].proposed_at - timedelta(seconds=0.5),
            finished_at=max(t.finished_at for t in trials) + timedelta(seconds=0.05),
        )
        session.add(job)
        session.flush()
        for sim in trials:
            # the names and values a real trial of this spec records (fixed ones included)
            values = hyperparameters_from_values(spec, sim.params).values
            best_epoch = sim.best_epoch
            best_metrics = sim.curve[best_epoch] if best_epoch is not None else None
            duration = (sim.finished_at - sim.started_at).total_seconds()
            trial = Trial(
                job_id=job.id,
                number=sim.number,
                status=TrialStatus(sim.status),
                hyperparameters=dict(values),
                score=sim.score,
                best_epoch=sim.best_epoch,
                epochs_run=len(sim.curve),
                metrics=best_metrics,
                parameter_count=sim.parameter_count,
                failure_reason=sim.failure_reason,
                proposed_at=sim.proposed_at,
                proposal_s=0.004,
                started_at=sim.started_at,
                finished_at=sim.finished_at,
                duration_s=duration,
                fit_duration_s=sum(sim.epoch_s),
                attempts=1,
                worker=sim.worker,
                reported=True,
                enqueued_at=sim.proposed_at,
            )
            session.add(trial)
            session.flush()
            at = sim.started_at + timedelta(seconds=0.3)
            for index, (metrics, seconds) in enumerate(zip(sim.curve, sim.epoch_s, strict=True)):
                at += timedelta(seconds=seconds)
                session.add(
                    Epoch(
                        trial_id=trial.id,
                        execution=0,
                        epoch=index,
                        metrics=metrics,
                        learning_rate=sim.params["learning_rate"],
                        duration_s=seconds,
                        created_at=at,
                    )
                )
        return job.id


def _dataset_info() -> dict[str, Any]:
    return {
        "name": "fashion_mnist",
        "source": "keras.datasets.fashion_mnist",
        "task": "classification",
        "rows_total": 60000,
        "rows_used": 60000,
        "rows_train": 54000,
        "rows_val": 6000,
        "split": "stratified",
        "split_seed": 0,
        "validation_split": 0.1,
        "max_rows": None,
        "stratified": True,
        "input_shape": [784],
        "n_classes": 10,
        "class_labels": list(range(10)),
        "standardization": "fitted on the training split only",
    }


# -- the Optuna study ------------------------------------------------------------------------


def insert_optuna_study(storage_url: str, name: str, trials: list[SimTrial]) -> int:
    """The same trials as an Optuna study (maximize; intermediate values: ``val_accuracy`` per
    epoch) in the RDB storage at ``storage_url``; returns the study's id."""
    import optuna
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )
    from optuna.trial import FrozenTrial, TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {
        "depth": IntDistribution(1, 3),
        "units": CategoricalDistribution(UNITS),
        "activation": CategoricalDistribution(ACTIVATIONS),
        "dropout": FloatDistribution(0.0, 0.5),
        "optimizer": CategoricalDistribution(OPTIMIZERS),
        "learning_rate": FloatDistribution(1e-4, 1e-1, log=True),
    }
    storage = optuna.storages.RDBStorage(storage_url)
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    frozen = []
    for sim in trials:
        completed = sim.status == "completed"
        frozen.append(
            FrozenTrial(
                number=sim.number,
                state=TrialState.COMPLETE if completed else TrialState.FAIL,
                value=sim.score,
                datetime_start=sim.started_at.replace(tzinfo=None),
                datetime_complete=sim.finished_at.replace(tzinfo=None),
                params=dict(sim.params),
                distributions=distributions,
                user_attrs={},
                system_attrs={} if completed else {"fail_reason": sim.failure_reason},
                intermediate_values={
                    e: m["val_accuracy"]
                    for e, m in enumerate(sim.curve)
                    if math.isfinite(m["val_accuracy"])
                },
                trial_id=0,
            )
        )
    study.add_trials(frozen)
    return study._study_id
