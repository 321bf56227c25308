"""Train one claimed trial in this pool process: the job's cached context (dataset, hypermodel),
the fit, and the result as storage takes it (with its model when it may enter the top-k)."""

from __future__ import annotations

import gc
import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras

import search_spaces.keras_objects  # noqa: F401  (registers custom layers for save/load)
from db.models import TrialStatus
from db.repositories.trials import TrialResult
from search_spaces.builder import SpecHyperModel
from search_spaces.hyperparameters import build_hyperparameters
from search_spaces.schema import JobSpec
from search_spaces.study_spec import variant_json
from search_spaces.training_spec import confirm_seeded
from worker.specs import parse_spec
from worker.training.artifacts import model_payload, signature
from worker.training.checkpoints import checkpoint_bytes
from worker.training.datasets import remembered_dataset
from worker.training.fit import (
    LoadCheckpoint,
    OnEpoch,
    SearchContext,
    Stop,
    TrialOutcome,
    TrialRun,
    fit_trial,
)
from worker.training.gradient_registry import forget_trial_gradients, snapshot
from worker.training.trial_health import trial_health

log = logging.getLogger(__name__)

__all__ = [
    "SearchContext",
    "Stop",
    "Trained",
    "confirm_trial",
    "context_for",
    "release_memory",
    "study_trial",
    "train",
]

#: per worker process: the loaded dataset and hypermodel of the last few jobs.
_CONTEXTS: OrderedDict[str, SearchContext] = OrderedDict()
_CONTEXTS_KEPT = 2


def context_for(job_id: str, spec_json: dict[str, Any]) -> SearchContext:
    """The job's dataset (split) and hypermodel, loaded once per process and kept for the next
    trials of the same job (the dataset also for the next jobs on it)."""
    if job_id in _CONTEXTS:
        _CONTEXTS.move_to_end(job_id)
        return _CONTEXTS[job_id]
    spec = parse_spec(spec_json)
    data = remembered_dataset(spec.dataset)
    ctx = SearchContext(
        job_id=job_id,
        spec=spec,
        data=data,
        hypermodel=SpecHyperModel.for_training_split(spec, data.x_train),
    )
    _CONTEXTS[job_id] = ctx
    while len(_CONTEXTS) > _CONTEXTS_KEPT:
        _CONTEXTS.popitem(last=False)
    return ctx


def study_trial(
    ctx: SearchContext, spec_json: dict[str, Any], values: dict[str, Any]
) -> tuple[SearchContext, dict[str, Any]]:
    """A technique study's trial (``values``: its variant and seed): the variant's spec with
    the seed, on the job's data (loaded once for every variant), and its fixed values."""
    spec = parse_spec(variant_json(spec_json, values["variant"], int(values["seed"])))
    hypermodel = SpecHyperModel.for_training_split(spec, ctx.data.x_train)
    return SearchContext(ctx.job_id, spec, ctx.data, hypermodel), build_hyperparameters(spec).values


def confirm_trial(ctx: SearchContext, spec_json: dict[str, Any], seed: int) -> SearchContext:
    """A confirmation run (``search.confirm``): the job's spec with other seeds
    (``confirm_seeded``), on the job's data."""
    spec = parse_spec(confirm_seeded(spec_json, seed))
    hypermodel = SpecHyperModel.for_training_split(spec, ctx.data.x_train)
    return SearchContext(ctx.job_id, spec, ctx.data, hypermodel)


@dataclass
class Trained:
    """How training ended (``stop``), and the result to record when it is the trial's."""

    stop: Stop
    result: TrialResult
    notes: list[str] = field(default_factory=list)


def train(
    ctx: SearchContext,
    number: int,
    values: dict[str, Any],
    on_epoch: OnEpoch,
    load_checkpoint: LoadCheckpoint,
    wants_model: Callable[[float], bool],
) -> Trained:
    """Fit trial ``number`` with its stored ``values``. ``wants_model(score)`` says whether a
    completed trial's model may enter the job's top-k (it is serialised only then)."""
    run = TrialRun(ctx=ctx, number=number, on_epoch=on_epoch, load_checkpoint=load_checkpoint)
    hp = _hyperparameters(ctx.spec, values)
    outcome = fit_trial(run, hp)
    try:
        result = _result(ctx, outcome, wants_model)
        try:
            result.health = trial_health(ctx, outcome, values, _epochs_allowed(ctx, hp))
        except Exception:  # judging never loses a trial's result
            log.warning("trial %s: training health not judged", number, exc_info=True)
        return Trained(outcome.stop, result, outcome.notes)
    finally:
        outcome.model = None


def _epochs_allowed(ctx: SearchContext, hp: Any) -> int:
    """How many epochs this trial's run could train (a Hyperband round: its own share)."""
    values = hp.values
    if "tuner/epochs" in values:
        return int(values["tuner/epochs"]) - int(values.get("tuner/initial_epoch", 0))
    return int(ctx.hypermodel.epochs_and_batch_size(hp)[0])


def _result(
    ctx: SearchContext, outcome: TrialOutcome, wants_model: Callable[[float], bool]
) -> TrialResult:
    """The outcome as recorded: a time-limit stop is a cancelled trial; a completed one
    carries its model (if it may enter the top-k) and, for Hyperband, its weights."""
    spec = ctx.spec
    status = outcome.status
    if outcome.stop in (Stop.CANCELLED, Stop.TIME_LIMIT):
        status = TrialStatus.CANCELLED
    result = TrialResult(
        status=status,
        score=outcome.score,
        best_epoch=outcome.best_epoch,
        metrics=outcome.metrics,
        parameter_count=outcome.parameter_count,
        failure_reason=outcome.failure_reason,
        duration_s=outcome.duration_s,
        fit_duration_s=outcome.fit_duration_s,
    )
    if outcome.pruned_at is not None and status is TrialStatus.PRUNED:
        result.pruned_epoch, result.pruned_against = (
            outcome.pruned_at.epoch,
            outcome.pruned_at.against,
        )
    if status is TrialStatus.COMPLETED and outcome.model is not None:
        score = float(outcome.score or 0.0)
        if wants_model(score):
            result.artifact = model_payload(outcome.model, signature(spec, ctx.data, score))
        if spec.search.algorithm == "hyperband" and not spec.is_single_configuration:
            result.checkpoint = checkpoint_bytes(outcome.model)
    return result


def _hyperparameters(spec: JobSpec, values: dict[str, Any]) -> Any:
    """A Keras Tuner ``HyperParameters`` holding the trial's stored values."""
    hp = build_hyperparameters(spec).copy()
    hp.values = dict(values)
    return hp


#: a full ``gc.collect()`` every this many trials (see ``release_memory``).
GC_EVERY_TRIALS = 10
_trials_run = 0
#: the custom gradients registered before this process's first trial (none of a trial's)
_GRADIENTS_KEPT = snapshot()


def release_memory() -> None:
    """Reset Keras's global state after a trial, and collect garbage every few trials.

    The trial's traced graphs are dropped from TensorFlow's gradient registry first
    (``worker.training.gradient_registry``): they were what made a process grow ~5 MB a trial
    and each later collection slower. Measured (digits 2 x 64, 40 trials in one process): 786
    MB after 10 trials and after 40 (967 MB after 40 before), a collection ~50-70 ms (~105 ms by
    the 40th before). ``clear_session(free_memory=True)`` would collect after every trial;
    ``free_memory=False`` costs ~3 ms and the collection comes every ``GC_EVERY_TRIALS``.
    """
    global _trials_run
    _trials_run += 1
    keras.backend.clear_session(free_memory=False)
    forget_trial_gradients(_GRADIENTS_KEPT)
    if _trials_run == 1:
        # After the first trial the process holds TensorFlow's and Keras's ~400,000 long-lived
        # objects; freezing them keeps every later full collection from walking them again
        # (measured: 150-240 ms -> 50-80 ms a collection).
        gc.collect()
        gc.freeze()
    elif _trials_run % GC_EVERY_TRIALS == 0:
        gc.collect()
