"""Search quality: the service's random, Bayesian, Hyperband and TPE searches (TPE with and
without its median pruner) against Optuna's TPE run in-process.

    .venv/bin/python -m bench.search_quality [--seeds 1 2 3] [--budgets 20 50]
        [--datasets digits pima fashion housing] [--methods ...] [--data-root ../shared/data]
        [--verify-on pima|digits|none] [--shared-start] [--name search_quality]

One search space (1-3 dense layers of 16-128 units, activation, dropout, optimizer, log learning
rate; at most 10 epochs, batch 32, early stopping with patience 3) on the datasets of
``bench.quality_datasets`` (digits, Pima diabetes, a 10,000-row Fashion-MNIST subset,
California housing). Per dataset and seed:

* the service (embedded defaults: SQLite + kombu's SQLAlchemy broker, one worker process, at most
  one trial of a job in flight so the Bayesian oracle sees every finished trial) runs random,
  Bayesian, Hyperband and TPE jobs submitted over HTTP (``service_tpe``; ``service_tpe_median``
  with ``search.pruner`` set to Optuna's ``MedianPruner()`` defaults: 5 startup trials, judged
  from the first epoch); trials are read back from the API;
* Optuna's TPE sampler, without and with its median pruner (``bench.optuna_arm``), trains the
  same Keras models with Keras's ``fit`` in a fresh process, on the same rows, split, seeds,
  epochs, batch size and early stopping; with ``--shared-start``, its studies first run the
  random configurations the service's TPE job of the same seed starts with (``enqueue_trial``),
  so both arms share their random start and differ by their TPE phase and training.

Budgets are prefixes of the largest one: the first N trials; for Hyperband the trials whose
scheduled epochs add up to at most N x 10. On ``--verify-on``'s first seed every method also runs
the smallest budget on its own, to check that it equals the prefix. Reports, per method and
budget, the median (min-max) over seeds of the best score (validation accuracy; housing:
validation MSE) and of the wall time until a trial first reached the dataset's target
(``bench.quality_summary``). The service's half and Optuna's half of each (seed, dataset) block
alternate in order. Writes ``bench/results/search_quality.json``.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from itertools import product
from pathlib import Path
from typing import Any

from api.client import ApiClient
from bench.common import RESULTS_DIR, arg_parser, run_job, running_service, write_result
from bench.optuna_arm import run_optuna
from bench.quality_datasets import (
    BATCH_SIZE,
    DATASETS,
    EPOCHS,
    PATIENCE,
    QualityDataset,
    dataset_ref,
    prepare_data,
)
from bench.quality_summary import (
    SHARED_STARTS,
    TrialRecord,
    compact,
    prefix_checks,
    record,
    run_summary,
    shared_start_checks,
    summarize,
)

#: Bayesian random start, equal to TPE's default ``n_startup_trials``. Keras Tuner's default
#: (3 x every declared hyperparameter, the fixed ones included) would exceed 50 trials here.
NUM_INITIAL_POINTS = 10
HYPERBAND_FACTOR = 3
#: the schema's maximum number of Hyperband iterations.
MAX_HYPERBAND_ITERATIONS = 5
SERVICE_METHODS = ("random", "bayesian", "hyperband", "service_tpe", "service_tpe_median")
#: Optuna's ``MedianPruner()`` defaults, as the service's pruner settings
MEDIAN_PRUNER = {"kind": "median", "startup_trials": 5, "warmup_epochs": 0, "interval": 1}
OPTUNA_METHODS = ("tpe", "tpe_median_pruner")
METHODS = SERVICE_METHODS + OPTUNA_METHODS
SERVICE_ENV = {"HPSEARCH_MAX_CONCURRENT_TRIALS_PER_JOB": "1", "HPSEARCH_TF_THREADS": "1"}
WARM_UP_SPEC = {"dataset": {"name": "iris"}, "training": {"epochs": 1}, "search": {"max_trials": 1}}


# -- the spec ------------------------------------------------------------------------------------


def search_spec(
    quality: QualityDataset, ref: str, method: str, trials: int, seed: int
) -> dict[str, Any]:
    """The job spec of ``method`` on ``quality``'s data, named ``ref`` (Optuna's runs use it with
    the random algorithm's fields)."""
    search: dict[str, Any] = {"max_trials": trials, "seed": seed, "objective": quality.objective}
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
        "dataset": {
            "name": ref,
            "validation_split": 0.2,
            "split_seed": 0,
            **quality.dataset_fields,
        },
        "model": {
            "input": quality.model_input,
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


# -- the run -------------------------------------------------------------------------------------


@dataclass
class Plan:
    """What to run: command-line options resolved."""

    seeds: list[int]
    budgets: list[int]
    datasets: list[str]
    methods: list[str]
    #: the datasets' files (``../shared/data``): Pima's and housing's uploads, Fashion-MNIST's
    data_root: Path
    #: the dataset whose first seed also runs the smallest budget (None: no prefix check).
    verify_on: str | None
    #: Optuna's studies start from the service's random start (common random numbers)
    shared_start: bool = False
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
    """What a spec names per dataset (uploads are made once, through the API)."""
    prepare_data(plan.datasets, plan.data_root, plan.work)
    with _service(plan) as client:
        return {n: dataset_ref(n, client, plan.data_root, plan.work) for n in plan.datasets}


def _service_block(plan: Plan, dataset: str, ref: str, seed: int, shift: int) -> list[dict]:
    """Start the service, run its searches for (dataset, seed) one job at a time, stop it."""
    runs = []
    with _service(plan) as client:
        run_job(client, WARM_UP_SPEC)
        for method in _rotate(plan.wanted(SERVICE_METHODS), shift):
            for trials in _trial_counts(plan, dataset, seed):
                spec = search_spec(DATASETS[dataset], ref, method, trials, seed)
                result = service_search(client, spec)
                runs.append(_run_entry(dataset, seed, method, trials, result))
    return runs


def _optuna_block(plan: Plan, dataset: str, ref: str, seed: int, shift: int) -> list[dict]:
    """Optuna's searches for (dataset, seed), each in a fresh process."""
    runs = []
    for method in _rotate(plan.wanted(OPTUNA_METHODS), shift):
        for trials in _trial_counts(plan, dataset, seed):
            quality = DATASETS[dataset]
            spec = search_spec(quality, ref, method, trials, seed)
            start = None
            if plan.shared_start:
                start = search_spec(quality, ref, SHARED_STARTS[method], trials, seed)
            result = run_optuna(spec, plan.work / "data", method, trials, seed, quality, start)
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
    summary = run_summary(result["trials"], DATASETS[dataset])
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


def _targets(datasets: list[str]) -> dict[str, Any]:
    return {n: {"target": DATASETS[n].target, "objective": DATASETS[n].objective} for n in datasets}


def resummarize(name: str) -> Path:
    """Recompute the summary of ``bench/results/NAME.json`` from its trials (current targets);
    the measured runs, prefix checks and machine facts stay as they were."""
    result = json.loads((RESULTS_DIR / f"{name}.json").read_text())
    runs = [{**run, "trials": [record(t) for t in run["trials"]]} for run in result["runs"]]
    datasets = list(dict.fromkeys(r["dataset"] for r in runs))
    methods = [m for m in METHODS if any(r["method"] == m for r in runs)]
    result["targets"] = _targets(datasets)
    result["summary"] = summarize(runs, datasets, result["budgets"], methods)
    result["summary_recomputed_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return write_result(name, result)  # its "machine" (the run's) wins over today's


def parse_args() -> tuple[Plan, str, bool]:
    parser = arg_parser(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--budgets", type=int, nargs="+", default=[20, 50])
    parser.add_argument(
        "--datasets", nargs="+", choices=sorted(DATASETS), default=["digits", "pima"]
    )
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    parser.add_argument(
        "--verify-on",
        default="pima",
        help="dataset whose first seed also runs the smallest budget ('none': skip the check)",
    )
    shared = "Optuna's studies first run the service TPE job's random start (same seed)"
    parser.add_argument("--shared-start", action="store_true", help=shared)
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
        data_root=args.data_root.resolve(),
        verify_on=None if args.verify_on == "none" else args.verify_on,
        shared_start=args.shared_start,
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
        "space": {n: search_spec(DATASETS[n], n, "random", largest, 0) for n in plan.datasets},
        "targets": _targets(plan.datasets),
        "seeds": plan.seeds,
        "budgets": sorted(plan.budgets),
        "budget_rule": (
            f"N trials of at most {EPOCHS} epochs; Hyperband: the trials whose epoch budgets "
            f"(tuner/epochs - tuner/initial_epoch) add up to at most N x {EPOCHS}"
        ),
        "service": {"env": SERVICE_ENV, "workers": 1, "database": "sqlite", "broker": "sqlalchemy"},
        "optuna_version": metadata.version("optuna"),
        "num_initial_points": NUM_INITIAL_POINTS,
        "shared_start": plan.shared_start,
        "hyperband": {
            "factor": HYPERBAND_FACTOR,
            "max_epochs": EPOCHS,
            "epochs_per_iteration": hyperband_epochs_per_iteration(),
            "iterations": hyperband_iterations(largest),
        },
        "total_wall_s": round(time.perf_counter() - started, 1),
        "summary": summarize(runs, plan.datasets, plan.budgets, plan.methods),
        "prefix_checks": prefix_checks(runs, min(plan.budgets), largest),
        "shared_start_checks": shared_start_checks(runs),
        "runs": [compact(r) for r in runs],
    }
    path = write_result(name, payload)
    checks = payload["prefix_checks"] + payload["shared_start_checks"]
    print(payload["summary"], checks, f"written to {path}", sep="\n")


if __name__ == "__main__":
    main()
