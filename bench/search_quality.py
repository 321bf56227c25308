"""Search quality: the service's random, Bayesian, Hyperband and TPE searches (TPE with and
without its median pruner) against Optuna's TPE run in-process.

    .venv/bin/python -m bench.search_quality [--seeds 1 2 3] [--budgets 20 50]
        [--datasets digits pima] [--methods ...] [--data-dir ../shared/data/pima_diabetes]
        [--verify-on pima|digits|none] [--name search_quality]

One search space (1-3 dense layers of 16-128 units, activation, dropout, optimizer, log learning
rate; at most 10 epochs, batch 32, early stopping with patience 3) on scikit-learn's digits and on
Pima diabetes (uploaded through the API from ``--data-dir``'s ``diabetes.csv``, target
``Outcome``). Per dataset and seed:

* the service (embedded defaults: SQLite + kombu's SQLAlchemy broker, one worker process, at most
  one trial of a job in flight so the Bayesian oracle sees every finished trial) runs random,
  Bayesian, Hyperband and TPE jobs submitted over HTTP (``service_tpe``; ``service_tpe_median``
  with ``search.pruner`` set to Optuna's ``MedianPruner()`` defaults: 5 startup trials, judged
  from the first epoch); trials are read back from the API;
* Optuna's TPE sampler, without and with its median pruner, trains the same Keras models in a
  fresh process: the project's spec -> Keras Tuner hyperparameters conversion and
  ``SpecHyperModel`` build them from the values Optuna suggests, on the rows and split of
  ``worker.training.datasets.load_dataset``, with the worker's epochs, batch size, early stopping, weight
  seeds and score (the best validation accuracy over the trial's epochs).

Budgets are prefixes of the largest one: the first N trials; for Hyperband the trials whose
scheduled epochs add up to at most N x 10. On ``--verify-on``'s first seed every method also runs
the smallest budget on its own, to check that it equals the prefix. Reports, per method and
budget, the median (min-max) over seeds of the best validation accuracy and of the wall time
until a trial first reached the dataset's target accuracy. The service's half and Optuna's half
of each (seed, dataset) block alternate in order. Writes ``bench/results/search_quality.json``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from itertools import product
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from api.client import ApiClient
from bench.common import RESULTS_DIR, arg_parser, run_job, running_service, write_result

EPOCHS = 10
PATIENCE = 3
BATCH_SIZE = 32
#: Bayesian random start, equal to TPE's default ``n_startup_trials``. Keras Tuner's default
#: (3 x every declared hyperparameter, the fixed ones included) would exceed 50 trials here.
NUM_INITIAL_POINTS = 10
HYPERBAND_FACTOR = 3
#: the schema's maximum number of Hyperband iterations.
MAX_HYPERBAND_ITERATIONS = 5
#: chosen before the full run from smoke runs (best scores ~0.98 and ~0.84 there): levels most
#: searches should reach, but not in their first few trials.
TARGETS = {"digits": 0.975, "pima": 0.82}
SERVICE_METHODS = ("random", "bayesian", "hyperband", "service_tpe", "service_tpe_median")
#: Optuna's ``MedianPruner()`` defaults, as the service's pruner settings
MEDIAN_PRUNER = {"kind": "median", "startup_trials": 5, "warmup_epochs": 0, "interval": 1}
OPTUNA_METHODS = ("tpe", "tpe_median_pruner")
METHODS = SERVICE_METHODS + OPTUNA_METHODS
PIMA_FILE = "diabetes.csv"
PIMA_TARGET = "Outcome"
SERVICE_ENV = {"HPSEARCH_MAX_CONCURRENT_TRIALS_PER_JOB": "1", "HPSEARCH_TF_THREADS": "1"}
WARM_UP_SPEC = {"dataset": {"name": "iris"}, "training": {"epochs": 1}, "search": {"max_trials": 1}}


@dataclass
class TrialRecord:
    """One trial as both sides report it; times in seconds from the search's start."""

    number: int
    status: str
    score: float | None
    started_s: float
    finished_s: float
    epochs_run: int
    nominal_epochs: int
    hyperparameters: dict[str, Any]


# -- the spec ------------------------------------------------------------------------------------


def search_spec(dataset: str, method: str, trials: int, seed: int) -> dict[str, Any]:
    """The job spec of ``method`` (Optuna's runs use it with the random algorithm's fields)."""
    search: dict[str, Any] = {"max_trials": trials, "seed": seed, "objective": "val_accuracy"}
    if method == "bayesian":
        search.update(algorithm="bayesian", num_initial_points=NUM_INITIAL_POINTS)
    elif method in ("service_tpe", "service_tpe_median"):
        search.update(algorithm="tpe", num_initial_points=NUM_INITIAL_POINTS)
        if method == "service_tpe_median":
            search["pruner"] = MEDIAN_PRUNER
    elif method == "hyperband":
        search.update(
            algorithm="hyperband",
            hyperband_factor=HYPERBAND_FACTOR,
            hyperband_iterations=hyperband_iterations(trials),
        )
    else:
        search["algorithm"] = "random"
    return {
        "name": f"bench-quality-{method}-{trials}-{seed}",
        "dataset": {"name": dataset, "validation_split": 0.2, "split_seed": 0},
        "model": {
            "depth": {"type": "int", "min": 1, "max": 3},
            "units": {"type": "int", "min": 16, "max": 128, "step": 16},
            "activation": {"type": "choice", "values": ["relu", "elu", "selu", "tanh"]},
            "kernel_initializer": "auto",
            "dropout": {"type": "choice", "values": [0.0, 0.1, 0.2, 0.3]},
        },
        "optimizer": {
            "name": {"type": "choice", "values": ["adam", "rmsprop", "nadam", "sgd"]},
            "learning_rate": {"type": "float", "min": 1e-4, "max": 1e-1, "sampling": "log"},
        },
        "training": {
            "epochs": EPOCHS,
            "batch_size": BATCH_SIZE,
            "early_stopping": {"patience": PATIENCE},
        },
        "search": search,
    }


def hyperband_epochs_per_iteration(max_epochs: int = EPOCHS, factor: int = HYPERBAND_FACTOR) -> int:
    """Epochs one Hyperband iteration schedules (a promoted trial trains only its new epochs),
    from Keras Tuner's own bracket formulas."""
    import keras_tuner as kt

    oracle = kt.oracles.HyperbandOracle(max_epochs=max_epochs, factor=factor)
    total = 0
    for bracket in range(oracle._get_num_brackets()):
        previous = 0
        for round_ in range(oracle._get_num_rounds(bracket)):
            epochs = oracle._get_epochs(bracket, round_)
            total += oracle._get_size(bracket, round_) * (epochs - previous)
            previous = epochs
    return total


def hyperband_iterations(trials: int) -> int:
    """Enough iterations for ``trials`` x ``EPOCHS`` epochs (at most the schema's maximum)."""
    needed = math.ceil(trials * EPOCHS / hyperband_epochs_per_iteration())
    return max(1, min(MAX_HYPERBAND_ITERATIONS, needed))


# -- the service side ----------------------------------------------------------------------------


def _seconds(stamp: str | None, zero: datetime) -> float:
    return (datetime.fromisoformat(stamp) - zero).total_seconds() if stamp else math.nan


def _service_record(item: dict[str, Any], zero: datetime) -> TrialRecord:
    values = item["hyperparameters"]
    nominal = int(values.get("tuner/epochs", EPOCHS)) - int(values.get("tuner/initial_epoch", 0))
    timings = item["timings"]
    return TrialRecord(
        number=item["number"],
        status=item["status"],
        score=item["score"] if item["status"] == "completed" else None,
        started_s=_seconds(timings["started_at"], zero),
        finished_s=_seconds(timings["finished_at"], zero),
        epochs_run=item["epochs_run"],
        nominal_epochs=nominal,
        hyperparameters=values,
    )


def read_trials(client: ApiClient, job: dict[str, Any]) -> list[TrialRecord]:
    """Every trial of ``job`` in number order, timed from the job's submission."""
    zero = datetime.fromisoformat(job["created_at"])
    items: list[dict[str, Any]] = []
    while True:
        page = client.trials(job["id"], sort="number", order="asc", limit=100, offset=len(items))
        items.extend(page["items"])
        if not page["items"] or len(items) >= page["total"]:
            break
    return [_service_record(item, zero) for item in items]


def service_search(client: ApiClient, spec: dict[str, Any]) -> dict[str, Any]:
    """Run one job to its end; its trials and the dataset facts the worker recorded."""
    job, _ = run_job(client, spec)
    if job["status"] != "succeeded":
        raise RuntimeError(f"job {job['id']} ended {job['status']}: {job['error']}")
    info = job["dataset_info"] or {}
    return {
        "trials": read_trials(client, job),
        "rows": [info.get("rows_train"), info.get("rows_val")],
    }


def upload_pima(client: ApiClient, data_dir: Path) -> str:
    """Upload Pima's CSV (with a header row); returns the ``upload:<id>`` a spec names."""
    detail = client.upload_dataset(data_dir / PIMA_FILE, target=PIMA_TARGET, name="pima-diabetes")
    return detail["ref"]


# -- the Optuna side (in a fresh process per study, like a fresh worker) ---------------------------


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


def _epoch_callback(trial: Any, prune: bool) -> Any:
    """Per epoch: keep the metrics, stop on a non-finite loss (the worker's ``diverged``) and,
    with ``prune``, report validation accuracy to Optuna and stop when it says prune."""
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
                trial.report(metrics["val_accuracy"], epoch)
                if trial.should_prune():
                    self.pruned = self.model.stop_training = True

    return EpochCallback()


def _fit_trial(context: dict[str, Any], trial: Any, prune: bool) -> tuple[str, float | None, int]:
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
    epochs = _epoch_callback(trial, prune)
    early = keras.callbacks.EarlyStopping(
        monitor="val_accuracy",
        mode="max",
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
    scores = [m["val_accuracy"] for m in epochs.history if math.isfinite(m["val_accuracy"])]
    if epochs.diverged or not scores:
        return "diverged", None, len(epochs.history)
    return ("pruned" if epochs.pruned else "completed"), max(scores), len(epochs.history)


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


def optuna_study(
    spec_json: dict[str, Any], data_dir: str, trials: int, seed: int, prune: bool
) -> dict[str, Any]:
    """TPE (with the median pruner if ``prune``) over ``trials`` trials, in this process."""
    _configure_tensorflow()
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    context = _study_context(spec_json, data_dir)
    _warm_up(context)
    records: list[TrialRecord] = []
    zero = time.perf_counter()

    def objective(trial: optuna.Trial) -> float:
        started = time.perf_counter() - zero
        status, score, epochs_run = _fit_trial(context, trial, prune)
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

    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner() if prune else optuna.pruners.NopPruner(),
    )
    study.optimize(objective, n_trials=trials)
    data = context["data"]
    return {
        "trials": records,
        "rows": [len(data.x_train), len(data.x_val)],
        "data_sha256": _data_digest(data),
    }


def run_optuna(spec: dict[str, Any], data_dir: Path, method: str, trials: int, seed: int) -> dict:
    """``optuna_study`` in a fresh (spawned) process: TensorFlow's memory goes with it."""
    prune = method == "tpe_median_pruner"
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        future = pool.submit(optuna_study, spec, str(data_dir), trials, seed, prune)
        return future.result()


# -- budgets and summaries -----------------------------------------------------------------------


def within_budget(trials: list[TrialRecord], method: str, budget: int) -> list[TrialRecord]:
    """The first ``budget`` trials; for Hyperband those whose epochs fit in ``budget`` x EPOCHS."""
    if method != "hyperband":
        return trials[:budget]
    kept, spent = [], 0
    for trial in trials:
        spent += trial.nominal_epochs
        if spent > budget * EPOCHS:
            break
        kept.append(trial)
    return kept


def run_summary(trials: list[TrialRecord], target: float) -> dict[str, Any]:
    """Best score, time to the target, wall time and epochs of one search within a budget.

    Only completed trials count: a pruned trial's partial score is no result (as in Optuna)."""
    scored = [t for t in trials if t.status == "completed" and t.score is not None]
    hits = [i for i, t in enumerate(trials) if t.status == "completed" and (t.score or 0) >= target]
    hit = trials[hits[0]] if hits else None
    return {
        "trials": len(trials),
        "completed": len(scored),
        "pruned": sum(t.status == "pruned" for t in trials),
        "best_val_accuracy": max((t.score for t in scored), default=None),
        "time_to_target_s": round(hit.finished_s, 2) if hit else None,
        "trials_to_target": hits[0] + 1 if hits else None,
        "wall_s": round(trials[-1].finished_s, 2) if trials else None,
        "epochs_run": sum(t.epochs_run for t in trials),
        "nominal_epochs": sum(t.nominal_epochs for t in trials),
    }


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def aggregate(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and range over seeds; an unreached target counts as infinitely late."""
    times = [s["time_to_target_s"] for s in summaries]
    reached = sorted(t for t in times if t is not None)
    padded = reached + [math.inf] * (len(times) - len(reached))
    median_time = statistics.median(padded) if padded else math.inf
    return {
        "seeds": len(summaries),
        "best_val_accuracy": _spread([s["best_val_accuracy"] or 0.0 for s in summaries]),
        "reached_target": len(reached),
        "time_to_target_s": {
            "median": round(median_time, 2) if math.isfinite(median_time) else None,
            "min": round(reached[0], 2) if reached else None,
            "max": round(padded[-1], 2) if reached and math.isfinite(padded[-1]) else None,
        },
        "wall_s": _spread([s["wall_s"] for s in summaries if s["wall_s"] is not None]),
        "epochs_run": _spread([s["epochs_run"] for s in summaries]),
        "trials": _spread([s["trials"] for s in summaries]),
    }


# -- the run -------------------------------------------------------------------------------------


@dataclass
class Plan:
    """What to run: command-line options resolved."""

    seeds: list[int]
    budgets: list[int]
    datasets: list[str]
    methods: list[str]
    data_dir: Path
    #: the dataset whose first seed also runs the smallest budget (None: no prefix check).
    verify_on: str | None
    work: Path = Path()

    def wanted(self, methods: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(m for m in methods if m in self.methods)


def _rotate(items: tuple[str, ...], shift: int) -> tuple[str, ...]:
    if not items:
        return items
    shift %= len(items)
    return items[shift:] + items[:shift]


def _service(plan: Plan) -> Any:
    """``running_service`` on this run's data directory (kept across starts)."""
    env = {**SERVICE_ENV, "HPSEARCH_DATA_DIR": str(plan.work / "data")}
    return running_service(env, workers=1, log_dir=plan.work / "logs")


def dataset_refs(plan: Plan) -> dict[str, str]:
    """What a spec names per dataset: Pima is uploaded once, through the API."""
    refs = {name: name for name in plan.datasets}
    if "pima" in refs:
        with _service(plan) as client:
            refs["pima"] = upload_pima(client, plan.data_dir)
    return refs


def _service_block(plan: Plan, dataset: str, ref: str, seed: int, shift: int) -> list[dict]:
    """Start the service, run its searches for (dataset, seed) one job at a time, stop it."""
    runs = []
    with _service(plan) as client:
        run_job(client, WARM_UP_SPEC)
        for method in _rotate(plan.wanted(SERVICE_METHODS), shift):
            for trials in _trial_counts(plan, dataset, seed):
                result = service_search(client, search_spec(ref, method, trials, seed))
                runs.append(_run_entry(dataset, seed, method, trials, result))
    return runs


def _optuna_block(plan: Plan, dataset: str, ref: str, seed: int, shift: int) -> list[dict]:
    """Optuna's searches for (dataset, seed), each in a fresh process."""
    runs = []
    for method in _rotate(plan.wanted(OPTUNA_METHODS), shift):
        for trials in _trial_counts(plan, dataset, seed):
            spec = search_spec(ref, method, trials, seed)
            result = run_optuna(spec, plan.work / "data", method, trials, seed)
            runs.append(_run_entry(dataset, seed, method, trials, result))
    return runs


def _trial_counts(plan: Plan, dataset: str, seed: int) -> list[int]:
    """The largest budget; plus the smallest one where prefixes are checked."""
    largest, smallest = max(plan.budgets), min(plan.budgets)
    check = dataset == plan.verify_on and seed == plan.seeds[0] and smallest < largest
    return [largest, smallest] if check else [largest]


def _run_entry(
    dataset: str, seed: int, method: str, trials: int, result: dict[str, Any]
) -> dict[str, Any]:
    entry = {"dataset": dataset, "seed": seed, "method": method, "requested": trials, **result}
    summary = run_summary(result["trials"], TARGETS[dataset])
    print({k: v for k, v in entry.items() if k != "trials"}, summary, flush=True)
    return entry


def run_all(plan: Plan) -> list[dict[str, Any]]:
    """Every (seed, dataset) block, the service's and Optuna's halves in alternating order."""
    refs = dataset_refs(plan)
    runs: list[dict[str, Any]] = []
    for index, (seed, dataset) in enumerate(product(plan.seeds, plan.datasets)):
        halves = [_service_block, _optuna_block]
        for half in halves if index % 2 == 0 else halves[::-1]:
            runs.extend(half(plan, dataset, refs[dataset], seed, index))
    return runs


def _same(a: list[TrialRecord], b: list[TrialRecord]) -> dict[str, Any]:
    """How a short search compares with the same-length prefix of the long one."""
    strip = [
        (
            {k: v for k, v in t.hyperparameters.items() if not k.startswith("tuner/")},
            t.nominal_epochs,
        )
        for t in a
    ]
    other = [
        (
            {k: v for k, v in t.hyperparameters.items() if not k.startswith("tuner/")},
            t.nominal_epochs,
        )
        for t in b
    ]
    diffs = [abs(x.score - y.score) for x, y in zip(a, b, strict=False) if x.score and y.score]
    return {
        "trials": [len(a), len(b)],
        "same_hyperparameters": strip == other,
        "max_score_difference": round(max(diffs, default=0.0), 6),
    }


def prefix_checks(runs: list[dict[str, Any]], budget: int, largest: int) -> list[dict[str, Any]]:
    """For each short verification run: is it the prefix of the long run with the same seed?"""
    checks = []
    for short in (r for r in runs if r["requested"] == budget < largest):
        long = next(
            r
            for r in runs
            if r["requested"] == largest
            and (r["dataset"], r["seed"], r["method"])
            == (short["dataset"], short["seed"], short["method"])
        )
        cut_short = within_budget(short["trials"], short["method"], budget)
        cut_long = within_budget(long["trials"], long["method"], budget)
        checks.append(
            {"dataset": short["dataset"], "seed": short["seed"], "method": short["method"]}
            | _same(cut_short, cut_long)
        )
    return checks


def summarize(runs: list[dict[str, Any]], plan: Plan) -> dict[str, Any]:
    """Per dataset, budget and method: the aggregate over seeds (long runs cut to the budget)."""
    largest = max(plan.budgets)
    summary: dict[str, Any] = {}
    for dataset, budget, method in product(plan.datasets, sorted(plan.budgets), plan.methods):
        mine = [
            run_summary(within_budget(r["trials"], method, budget), TARGETS[dataset])
            for r in runs
            if (r["dataset"], r["method"], r["requested"]) == (dataset, method, largest)
        ]
        summary.setdefault(dataset, {}).setdefault(str(budget), {})[method] = aggregate(mine)
    return summary


def _compact(run: dict[str, Any]) -> dict[str, Any]:
    """A run as written to JSON: per trial, status, score, times and epochs."""
    trials = [
        {
            "n": t.number,
            "status": t.status,
            "score": None if t.score is None else round(t.score, 5),
            "start_s": round(t.started_s, 2),
            "end_s": round(t.finished_s, 2),
            "epochs": t.epochs_run,
            "budget_epochs": t.nominal_epochs,
        }
        for t in run["trials"]
    ]
    return {**run, "trials": trials}


def _record(trial: dict[str, Any]) -> TrialRecord:
    """A trial back from its JSON form (``_compact``), without its hyperparameters."""
    return TrialRecord(
        number=trial["n"],
        status=trial["status"],
        score=trial["score"],
        started_s=trial["start_s"],
        finished_s=trial["end_s"],
        epochs_run=trial["epochs"],
        nominal_epochs=trial["budget_epochs"],
        hyperparameters={},
    )


def resummarize(name: str) -> Path:
    """Recompute the summary of ``bench/results/NAME.json`` from its trials (current targets);
    the measured runs, prefix checks and machine facts stay as they were."""
    result = json.loads((RESULTS_DIR / f"{name}.json").read_text())
    runs = [{**run, "trials": [_record(t) for t in run["trials"]]} for run in result["runs"]]
    plan = Plan(
        seeds=result["seeds"],
        budgets=result["budgets"],
        datasets=list(dict.fromkeys(r["dataset"] for r in runs)),
        methods=[m for m in METHODS if any(r["method"] == m for r in runs)],
        data_dir=Path(),
        verify_on=None,
    )
    result["targets"] = TARGETS
    result["summary"] = summarize(runs, plan)
    result["summary_recomputed_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return write_result(name, result)  # its "machine" (the run's) wins over today's


def parse_args() -> tuple[Plan, str, bool]:
    parser = arg_parser(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--budgets", type=int, nargs="+", default=[20, 50])
    parser.add_argument("--datasets", nargs="+", choices=sorted(TARGETS), default=list(TARGETS))
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data/pima_diabetes"))
    parser.add_argument(
        "--verify-on",
        default="pima",
        help="dataset whose first seed also runs the smallest budget ('none': skip the check)",
    )
    parser.add_argument("--name", default="search_quality", help="bench/results/NAME.json")
    parser.add_argument(
        "--resummarize",
        action="store_true",
        help="only recompute NAME.json's summary from its recorded trials (trains nothing)",
    )
    args = parser.parse_args()
    plan = Plan(
        seeds=args.seeds,
        budgets=args.budgets,
        datasets=args.datasets,
        methods=args.methods,
        data_dir=args.data_dir.resolve(),
        verify_on=None if args.verify_on == "none" else args.verify_on,
    )
    return plan, args.name, args.resummarize


def main() -> None:
    plan, name, only_summary = parse_args()
    if only_summary:
        print(f"written to {resummarize(name)}")
        return
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hpsearch-bench-") as tmp:
        plan.work = Path(tmp)
        runs = run_all(plan)
    largest = max(plan.budgets)
    payload = {
        "benchmark": "search quality: the service's random/Bayesian/Hyperband/TPE vs Optuna TPE",
        "space": search_spec("<dataset>", "random", largest, 0),
        "targets": TARGETS,
        "seeds": plan.seeds,
        "budgets": sorted(plan.budgets),
        "budget_rule": (
            f"N trials of at most {EPOCHS} epochs; Hyperband: the trials whose epoch budgets "
            f"(tuner/epochs - tuner/initial_epoch) add up to at most N x {EPOCHS}"
        ),
        "service": {"env": SERVICE_ENV, "workers": 1, "database": "sqlite", "broker": "sqlalchemy"},
        "optuna_version": metadata.version("optuna"),
        "num_initial_points": NUM_INITIAL_POINTS,
        "hyperband": {
            "factor": HYPERBAND_FACTOR,
            "max_epochs": EPOCHS,
            "epochs_per_iteration": hyperband_epochs_per_iteration(),
            "iterations": hyperband_iterations(largest),
        },
        "total_wall_s": round(time.perf_counter() - started, 1),
        "summary": summarize(runs, plan),
        "prefix_checks": prefix_checks(runs, min(plan.budgets), largest),
        "runs": [_compact(r) for r in runs],
    }
    path = write_result(name, payload)
    print(payload["summary"], payload["prefix_checks"], f"written to {path}", sep="\n")


if __name__ == "__main__":
    main()
