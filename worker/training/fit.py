"""The trial's fit loop (ours, not ``kt.Tuner.search``): build, fit, decide the outcome.

One trial = ``executions_per_trial`` fits of fresh models with the same hyperparameters. Its score
is Keras Tuner's rule: the mean over executions of each execution's best objective value.
After each epoch a callback hands the epoch to the caller's ``on_epoch`` hook (which records it
and says whether to go on), and stops training on divergence (loss NaN/inf) or when the hook says
so: job cancelled, lease lost, worker shutting down, time limit, database away.
"""

from __future__ import annotations

import enum
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
from celery.exceptions import SoftTimeLimitExceeded

from db.models import TrialStatus
from db.settings import get_settings
from health.verdicts import EpochRecord
from search_spaces.direction import Direction
from search_spaces.schema import JobSpec
from search_spaces.training_spec import training_seed
from worker.training import feeding
from worker.training.checkpoints import load_checkpoint
from worker.training.datasets import LoadedDataset
from worker.training.epochs_loop import fit_epochs
from worker.training.health_probe import PROBE_SEED, HealthProbe, probe_every
from worker.training.hopeless_watch import HopelessWatch, hopeless_watch

log = logging.getLogger(__name__)

MAX_REASON_CHARS = 2000


class Stop(enum.StrEnum):
    """Why training of a trial stopped before its epochs ran out (beyond early stopping)."""

    NONE = "none"
    DIVERGED = "diverged"
    #: the network cannot learn (``health.hopeless``): the trial ends as pruned.
    HOPELESS = "hopeless"
    #: the job's pruner (``search.pruner``) stopped it: the trial ends as pruned.
    PRUNED = "pruned"
    CANCELLED = "cancelled"
    LEASE_LOST = "lease_lost"
    #: the worker is shutting down (warm): the trial goes back to the queue.
    RELEASED = "released"
    TIME_LIMIT = "time_limit"
    #: the database stayed away past the retry budget: the trial goes back to the queue.
    DATABASE_AWAY = "database_away"


@dataclass(frozen=True)
class Halt:
    """The caller's answer after an epoch: stop training, and why."""

    stop: Stop
    reason: str
    #: a pruner's stop: the epoch (from 1) and the value it was compared against
    epoch: int | None = None
    against: float | None = None


@dataclass(frozen=True)
class EpochReport:
    """One epoch of one execution, as training left it."""

    execution: int
    epoch: int
    metrics: dict[str, float]
    learning_rate: float | None
    duration_s: float
    #: the probe's record of the network after this epoch (None when not probed)
    health: dict[str, Any] | None = None


#: records an epoch and says whether to go on (None) or stop.
OnEpoch = Callable[[EpochReport], Halt | None]
#: the weights a Hyperband trial ended with, by trial number (None if gone).
LoadCheckpoint = Callable[[int], bytes | None]


@dataclass
class SearchContext:
    """What every trial of one job shares (cached per worker process)."""

    job_id: str
    spec: JobSpec
    data: LoadedDataset
    hypermodel: Any  # search_spaces.builder.SpecHyperModel


@dataclass
class TrialRun:
    """One attempt at one trial, by this worker process, and the caller's hooks."""

    ctx: SearchContext
    number: int
    on_epoch: OnEpoch
    load_checkpoint: LoadCheckpoint


@dataclass
class TrialOutcome:
    status: TrialStatus
    stop: Stop = Stop.NONE
    score: float | None = None
    best_epoch: int | None = None
    metrics: dict[str, float] | None = None
    parameter_count: int | None = None
    failure_reason: str | None = None
    duration_s: float = 0.0
    fit_duration_s: float = 0.0
    #: the best execution's trained model (completed trials only), for the artifact/checkpoint.
    model: Any = None
    notes: list[str] = field(default_factory=list)
    #: the last execution's epochs, with their health records (what the verdicts read)
    epochs: list[EpochRecord] = field(default_factory=list)
    #: the pruner's stop (``Halt.epoch``, ``Halt.against``)
    pruned_at: Halt | None = None


class ControlCallback(keras.callbacks.Callback):
    """Hands each epoch to the run's ``on_epoch`` hook, and stops training on divergence or when
    the hook says so."""

    def __init__(
        self,
        run: TrialRun,
        execution: int,
        probe: HealthProbe | None = None,
        watch: HopelessWatch | None = None,
    ) -> None:
        super().__init__()
        self.run = run
        self.execution = execution
        self.probe = probe
        self.watch = watch
        self.history: list[tuple[int, dict[str, float]]] = []
        self.records: list[EpochRecord] = []
        self.stop = Stop.NONE
        self.reason: str | None = None
        self.halt: Halt | None = None
        self._started = 0.0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self.probe is not None:
            try:
                self.probe.start(self.model)
            except Exception:  # a probe never fails the trial
                log.warning("trial %s: health probe not started", self.run.number, exc_info=True)
                self.probe = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        duration_s = time.perf_counter() - self._started
        metrics = {k: float(v) for k, v in (logs or {}).items() if np.ndim(v) == 0}
        metrics.pop("learning_rate", None)
        force = self.watch is not None and self.watch.wants_probe(self.records, metrics)
        health = self._health(epoch, duration_s, force)
        halt = self.run.on_epoch(
            EpochReport(
                self.execution, epoch, metrics, _learning_rate(self.model), duration_s, health
            )
        )
        if halt is not None and halt.stop in (Stop.LEASE_LOST, Stop.DATABASE_AWAY):
            self._halt(halt)  # the epoch is not ours, or not recorded: it does not count
            return
        self.history.append((epoch, metrics))
        self.records.append(EpochRecord(epoch, metrics, health))
        loss = metrics.get("loss")
        if loss is not None and not math.isfinite(loss):
            kind = "nan" if math.isnan(loss) else "inf"
            self._halt(Halt(Stop.DIVERGED, f"loss became {kind} at epoch {epoch + 1}"))
        elif halt is not None:
            self._halt(halt)
        elif self.watch is not None and (reason := self.watch.reason(self.records)):
            self._halt(Halt(Stop.HOPELESS, f"{reason} (at epoch {epoch + 1})"))

    def _health(self, epoch: int, epoch_s: float, force: bool = False) -> dict[str, Any] | None:
        """The probe's record after ``epoch`` (with what it cost), if this epoch is probed (or
        ``force``); a probe that fails says so in the log and never fails the trial."""
        if self.probe is None or not (force or self.probe.due(epoch)):
            return None
        started = time.perf_counter()
        try:
            record = self.probe.measure(self.model)
        except Exception:
            log.warning("trial %s: health probe failed", self.run.number, exc_info=True)
            self.probe = None
            return None
        probe_s = time.perf_counter() - started
        self.probe.schedule(epoch, probe_s, epoch_s)
        record["probe_s"] = round(probe_s, 4)
        return record

    def _halt(self, halt: Halt) -> None:
        self.stop, self.reason, self.halt = halt.stop, halt.reason, halt
        self.model.stop_training = True


def _learning_rate(model: keras.Model) -> float | None:
    try:
        return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    except Exception:  # an optimizer without a readable learning rate
        return None


def _best(
    history: list[tuple[int, dict[str, float]]], objective: str, direction: Direction
) -> tuple[int, dict[str, float]] | None:
    """The epoch with the best finite objective value."""
    scored = [(e, m) for e, m in history if math.isfinite(m.get(objective, math.nan))]
    if not scored:
        return None
    return direction.best(scored, key=lambda em: em[1][objective])


def _pruned(
    outcome: TrialOutcome,
    control: ControlCallback,
    objective: str,
    direction: Direction,
    earlier: list[tuple[float, int, dict[str, float]]],
) -> None:
    """A hopeless trial, or one the job's pruner stopped, ends pruned with its best epoch's
    score so far, averaged with its ``earlier`` executions' as a completed trial's is (the
    search learns from it; it is never the job's best); one whose objective was never finite,
    diverged."""
    best = _best(control.history, objective, direction)
    if best is None:
        outcome.status = TrialStatus.DIVERGED
        return
    outcome.status = TrialStatus.PRUNED
    outcome.best_epoch, outcome.metrics = best
    outcome.score = float(np.mean([v for v, _, _ in earlier] + [best[1][objective]]))


def _callbacks(ctx: SearchContext, hp: Any, control: ControlCallback) -> list[Any]:
    spec = ctx.spec
    callbacks: list[Any] = [control]
    stopping = spec.training.early_stopping
    if stopping.enabled:
        monitor = spec.early_stopping_monitor
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor,
                mode=Direction.of_objective(monitor),
                patience=stopping.patience,
                min_delta=stopping.min_delta,
                restore_best_weights=stopping.restore_best_weights,
            )
        )
    plateau = ctx.hypermodel.plateau_callback(hp)
    if plateau is not None:
        callbacks.append(plateau)
    return callbacks


def _fit_schedule(ctx: SearchContext, hp: Any) -> tuple[int, int, int, str | None]:
    """``(initial_epoch, epochs, batch_size, resume_from)`` for this trial."""
    epochs, batch_size = ctx.hypermodel.epochs_and_batch_size(hp)
    values = hp.values
    if "tuner/epochs" not in values:
        return 0, int(epochs), int(batch_size), None
    return (
        int(values.get("tuner/initial_epoch", 0)),
        int(values["tuner/epochs"]),
        int(batch_size),
        values.get("tuner/trial_id"),
    )


def fit_trial(run: TrialRun, hp: Any) -> TrialOutcome:
    """Train one trial (all its executions) and return what happened; never raises for a
    failure of the model itself (build/fit exceptions become a FAILED outcome)."""
    ctx, trial_number = run.ctx, run.number
    spec = ctx.spec
    objective, direction = spec.objective, spec.direction
    started = time.perf_counter()
    outcome = TrialOutcome(status=TrialStatus.RUNNING)
    per_execution: list[tuple[float, int, dict[str, float]]] = []
    best_model: Any = None
    best_value: float | None = None
    try:
        initial_epoch, epochs, batch_size, resume_from = _fit_schedule(ctx, hp)
        threads = get_settings().tf_threads
        for execution in range(spec.search.executions_per_trial):
            seed = training_seed(spec.search.seed, spec.training.seed, trial_number)
            if seed is not None:
                seed += execution
                keras.utils.set_random_seed(seed)
            model = ctx.hypermodel.build(hp)
            outcome.parameter_count = int(model.count_params())
            start_epoch = initial_epoch
            if resume_from is not None:
                past = int(resume_from)
                content = run.load_checkpoint(past)
                start_epoch = load_checkpoint(content, model, past, initial_epoch, outcome.notes)
            probe = None
            if spec.training.health_probe:
                probe = HealthProbe.of_rows(
                    ctx.data.x_train,
                    ctx.data.y_train,
                    seed=PROBE_SEED,
                    every=probe_every(epochs),
                    last_epoch=epochs - 1,
                )
            control = ControlCallback(
                run, execution, probe, hopeless_watch(spec, ctx.data, hp.values, epochs - 1)
            )
            fit_started = time.perf_counter()
            fit_epochs(
                model,
                feeding.training_batches(
                    ctx.data.x_train, ctx.data.y_train, batch_size, seed=seed, threads=threads
                ),
                feeding.validation_batches(
                    ctx.data.x_val, ctx.data.y_val, batch_size, threads=threads
                ),
                epochs=epochs,
                initial_epoch=start_epoch,
                callbacks=_callbacks(ctx, hp, control),
            )
            outcome.fit_duration_s += time.perf_counter() - fit_started
            outcome.epochs = control.records
            if control.stop is not Stop.NONE:
                outcome.stop, outcome.failure_reason = control.stop, control.reason
                if control.stop is Stop.DIVERGED:
                    outcome.status = TrialStatus.DIVERGED
                    if spec.search.executions_per_trial > 1:
                        outcome.failure_reason = f"{control.reason} (execution {execution})"
                elif control.stop in (Stop.HOPELESS, Stop.PRUNED):
                    _pruned(outcome, control, objective, direction, per_execution)
                    outcome.pruned_at = control.halt if control.stop is Stop.PRUNED else None
                else:
                    outcome.status = TrialStatus.CANCELLED
                break
            best = _best(control.history, objective, direction)
            if best is None:
                outcome.status = TrialStatus.DIVERGED
                outcome.failure_reason = f"{objective} was never finite (execution {execution})"
                break
            epoch, metrics = best
            value = metrics[objective]
            per_execution.append((value, epoch, metrics))
            if direction.better(value, best_value):
                best_value, best_model = value, model
            del model
    except SoftTimeLimitExceeded:
        limit = get_settings().trial_soft_time_limit_s
        outcome.status = TrialStatus.FAILED
        outcome.failure_reason = f"stopped by the worker's soft time limit ({limit} s per trial)"
    except Exception as exc:  # a bad combination, out of memory...: the trial fails, not the job
        log.warning("trial %s failed", trial_number, exc_info=True)
        outcome.status = TrialStatus.FAILED
        outcome.failure_reason = f"{type(exc).__name__}: {exc}"[:MAX_REASON_CHARS]
    if outcome.status is TrialStatus.RUNNING:
        outcome.status = TrialStatus.COMPLETED
        outcome.score = float(np.mean([v for v, _, _ in per_execution]))
        outcome.best_epoch = direction.best(per_execution, key=lambda p: p[0])[1]
        names = set().union(*(m.keys() for _, _, m in per_execution))
        outcome.metrics = {
            n: float(np.mean([m[n] for _, _, m in per_execution if n in m])) for n in sorted(names)
        }
        outcome.model = best_model
    outcome.duration_s = time.perf_counter() - started
    return outcome
