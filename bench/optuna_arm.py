"""The search-quality benchmark's Optuna arm: Optuna's TPE sampler, without and with its median
pruner, training the same Keras models as the service's workers, in a fresh process per study.

The trial's values are suggested per Keras Tuner hyperparameter of the same spec (conditional
ones only when active), turned into the model by the project's ``hyperparameters_from_values``
and ``SpecHyperModel.build``, and trained with Keras's own ``Model.fit`` (as a user's objective
would) on the worker's batches (``worker.training.feeding``) and rows
(``worker.training.datasets.load_dataset``): same seeds per trial number, one TensorFlow thread,
the same early stopping, score = the best epoch's objective. A pruned trial counts as a trial of
the budget but not as a result (as in Optuna: ``best_value`` ignores it).

With a shared start, the study first runs (``enqueue_trial``) the random configurations the
service's TPE job proposes before its sampler takes over: common random numbers, so the two arms
differ by their TPE phase and their training, not by which random points each drew first.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from bench.quality_datasets import EPOCHS, QualityDataset
from bench.quality_summary import TrialRecord
from worker.optuna_trials import in_memory_study


def _configure_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def suggest_values(trial: Any, space: list[Any]) -> dict[str, Any]:
    """Optuna's suggestion for every active hyperparameter of a Keras Tuner space (in
    declaration order, so a parent is set before the children it activates)."""
    from keras_tuner.engine.hyperparameters import Boolean, Choice, Fixed, Float, Int

    values: dict[str, Any] = {}
    for hp in space:
        if not all(c.is_active(values) for c in hp.conditions):
            continue
        if isinstance(hp, Fixed):
            values[hp.name] = hp.value
        elif isinstance(hp, Boolean):
            values[hp.name] = trial.suggest_categorical(hp.name, [True, False])
        elif isinstance(hp, Choice):
            values[hp.name] = trial.suggest_categorical(hp.name, list(hp.values))
        elif isinstance(hp, Int | Float) and hp.sampling in ("linear", "log"):
            log = hp.sampling == "log"
            step = None if log else hp.step
            if isinstance(hp, Int):
                values[hp.name] = trial.suggest_int(
                    hp.name, hp.min_value, hp.max_value, step=step or 1, log=log
                )
            else:
                values[hp.name] = trial.suggest_float(
                    hp.name, hp.min_value, hp.max_value, step=step, log=log
                )
        else:
            raise NotImplementedError(f"no Optuna mapping for {hp!r}")
    return values


def _epoch_callback(trial: Any, prune: bool, objective: str) -> Any:
    """Per epoch: keep the metrics, stop on a non-finite loss (the worker's ``diverged``) and,
    with ``prune``, report the objective to Optuna and stop when it says prune."""
    import keras

    class EpochCallback(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.history: list[dict[str, float]] = []
            self.diverged = self.pruned = False

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            metrics = {k: float(v) for k, v in (logs or {}).items()}
            self.history.append(metrics)
            if not math.isfinite(metrics.get("loss", math.nan)):
                self.diverged = self.model.stop_training = True
                return
            if prune:
                trial.report(metrics[objective], epoch)
                if trial.should_prune():
                    self.pruned = self.model.stop_training = True

    return EpochCallback()


def _fit_trial(
    context: dict[str, Any], trial: Any, prune: bool, quality: QualityDataset
) -> tuple[str, float | None, int]:
    """Build and fit the trial's model as the worker does; (status, score, epochs run)."""
    import keras

    from search_spaces.hyperparameters import hyperparameters_from_values
    from worker.training import feeding

    spec, data = context["spec"], context["data"]
    hp = hyperparameters_from_values(spec, suggest_values(trial, context["space"]))
    seed = spec.search.seed + trial.number * 100
    keras.utils.set_random_seed(seed)
    model = context["hypermodel"].build(hp)
    stopping = spec.training.early_stopping
    objective = quality.objective
    epochs = _epoch_callback(trial, prune, objective)
    early = keras.callbacks.EarlyStopping(
        monitor=objective,
        mode=quality.direction,
        patience=stopping.patience,
        min_delta=stopping.min_delta,
        restore_best_weights=stopping.restore_best_weights,
    )
    batch_size = int(hp.get("batch_size"))
    model.fit(
        feeding.training_batches(data.x_train, data.y_train, batch_size, seed=seed, threads=1),
        validation_data=feeding.validation_batches(data.x_val, data.y_val, batch_size, threads=1),
        epochs=int(hp.get("epochs")),
        shuffle=False,
        callbacks=[epochs, early],
        verbose=0,
    )
    keras.backend.clear_session(free_memory=False)  # as the worker does after each trial
    scores = [m[objective] for m in epochs.history if math.isfinite(m[objective])]
    best = quality.best(scores)
    if epochs.diverged or best is None:
        return "diverged", None, len(epochs.history)
    return ("pruned" if epochs.pruned else "completed"), best, len(epochs.history)


def _study_context(spec_json: dict[str, Any], data_dir: str) -> dict[str, Any]:
    """Spec, data and hypermodel exactly as a worker builds them for a job."""
    os.environ["HPSEARCH_DATA_DIR"] = data_dir  # where the service stored the upload
    from search_spaces.builder import SpecHyperModel
    from search_spaces.hyperparameters import build_hyperparameters
    from worker.specs import parse_spec
    from worker.training.datasets import load_dataset

    spec = parse_spec(spec_json)
    data = load_dataset(spec.dataset)
    hypermodel = SpecHyperModel.for_training_split(spec, data.x_train)
    space = list(build_hyperparameters(spec).space)
    return {"spec": spec, "data": data, "hypermodel": hypermodel, "space": space}


def _data_digest(data: Any) -> str:
    digest = hashlib.sha256()
    for array in (data.x_train, data.y_train, data.x_val, data.y_val):
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def _warm_up(context: dict[str, Any]) -> None:
    """One short fit, untimed: the worker is warm too (TensorFlow's first-use costs)."""
    import keras

    from search_spaces.hyperparameters import build_hyperparameters

    data = context["data"]
    model = context["hypermodel"].build(build_hyperparameters(context["spec"]))
    model.fit(data.x_train[:64], data.y_train[:64], epochs=1, verbose=0)
    keras.backend.clear_session(free_memory=False)


def service_random_start(service_spec_json: dict[str, Any]) -> list[dict[str, Any]]:
    """The configurations a TPE job of this spec proposes before its sampler starts learning
    (its ``num_initial_points``): each is drawn from its own seeded stream whatever the trials
    before it scored, so an empty history gives exactly what the job's trials hold."""
    from worker.specs import parse_spec
    from worker.training.tpe_search import TpeSearch

    spec = parse_spec(service_spec_json)
    if spec.search.seed is None:
        raise ValueError("an unseeded job's random start is not known ahead: set search.seed")
    count = min(spec.initial_points, spec.search.max_trials)
    return [TpeSearch(spec, {"proposed": n}, lambda _: {}).propose().values for n in range(count)]


def optuna_study(
    spec_json: dict[str, Any],
    data_dir: str,
    trials: int,
    seed: int,
    prune: bool,
    quality: QualityDataset,
    start_from: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """TPE (with the median pruner if ``prune``) over ``trials`` trials, in this process; with
    ``start_from`` (a service TPE job's spec), that job's random start first."""
    _configure_tensorflow()
    import optuna

    context = _study_context(spec_json, data_dir)
    start = service_random_start(start_from) if start_from is not None else []
    _warm_up(context)
    records: list[TrialRecord] = []
    zero = time.perf_counter()

    def objective(trial: optuna.Trial) -> float:
        started = time.perf_counter() - zero
        status, score, epochs_run = _fit_trial(context, trial, prune, quality)
        record = TrialRecord(
            number=trial.number,
            status=status,
            score=score,
            started_s=started,
            finished_s=time.perf_counter() - zero,
            epochs_run=epochs_run,
            nominal_epochs=EPOCHS,
            hyperparameters=dict(trial.params),
        )
        records.append(record)
        if status == "pruned":
            raise optuna.TrialPruned()
        return score if score is not None else math.nan

    study = in_memory_study(
        quality.direction,
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner() if prune else optuna.pruners.NopPruner(),
    )
    for values in start:
        study.enqueue_trial(values)
    study.optimize(objective, n_trials=trials)
    data = context["data"]
    return {
        "shared_start": len(start),
        "trials": records,
        "rows": [len(data.x_train), len(data.x_val)],
        "data_sha256": _data_digest(data),
    }


def run_optuna(
    spec: dict[str, Any],
    data_dir: Path,
    method: str,
    trials: int,
    seed: int,
    quality: QualityDataset,
    start_from: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``optuna_study`` in a fresh (spawned) process: TensorFlow's memory goes with it."""
    prune = method == "tpe_median_pruner"
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        future = pool.submit(
            optuna_study, spec, str(data_dir), trials, seed, prune, quality, start_from
        )
        return future.result()
