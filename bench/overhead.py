"""The service's overhead over running Keras Tuner by hand, on the same seeded search.

    .venv/bin/python -m bench.overhead [--trials 20] [--repeats 3]

The same seeded random search on scikit-learn's digits (the same hyperparameters trial for trial)
runs (a) in-process with bare Keras Tuner (timed from loading the data) (``kt.RandomSearch`` on the same hypermodel),
(b) through the service over HTTP with one worker on the embedded defaults (SQLite + SQLAlchemy
broker) and (c) with PostgreSQL + Redis, timed from submission to the job's end on a warm worker. Every repetition rotates the order of the three. Reports
total wall time, per-trial overhead ((wall - sum of model.fit time) / trials) and the ratios
(b)/(a), (c)/(a) of the medians. Writes ``bench/results/overhead.json``.
"""

from __future__ import annotations

import itertools
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import redis

from bench.common import (
    REDIS_URL,
    arg_parser,
    fresh_postgres_database,
    run_job,
    running_service,
    write_result,
)

SEED = 7
WARM_UP_SPEC = {
    "dataset": {"name": "iris"},
    "training": {"epochs": 1},
    "search": {"max_trials": 1},
}


def overhead_spec(trials: int) -> dict[str, Any]:
    return {
        "name": f"bench-overhead-{trials}",
        "dataset": {"name": "digits", "split_seed": 0},
        "model": {
            "depth": {"type": "int", "min": 1, "max": 3},
            "units": {"type": "int", "min": 16, "max": 128, "step": 16},
            "activation": {"type": "choice", "values": ["relu", "elu", "selu", "tanh"]},
            "kernel_initializer": "auto",
            "dropout": {"type": "choice", "values": [0.0, 0.1, 0.2]},
        },
        "optimizer": {
            "name": {"type": "choice", "values": ["adam", "rmsprop", "nadam"]},
            "learning_rate": {"type": "float", "min": 1e-4, "max": 1e-2, "sampling": "log"},
        },
        "training": {"epochs": 10, "batch_size": 32, "early_stopping": {"patience": 3}},
        "search": {"algorithm": "random", "max_trials": trials, "seed": SEED},
    }


def bare_keras_tuner(spec_dict: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """(a): Keras Tuner by hand, in this process, with the same hypermodel the workers build."""
    import keras
    import keras_tuner as kt

    from search_spaces.builder import SpecHyperModel
    from search_spaces.hyperparameters import build_hyperparameters
    from search_spaces.schema import JobSpec
    from worker.training.datasets import load_dataset

    started = time.perf_counter()
    spec = JobSpec.model_validate(spec_dict)
    data = load_dataset(spec.dataset)
    fit_seconds: list[float] = []

    class TimedHyperModel(SpecHyperModel):
        def fit(self, hp: Any, model: Any, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return super().fit(hp, model, *args, **kwargs)
            finally:
                fit_seconds.append(time.perf_counter() - started)

    hypermodel = TimedHyperModel.for_training_split(spec, data.x_train)
    tuner = kt.RandomSearch(
        hypermodel,
        objective=kt.Objective(spec.objective, spec.direction),
        max_trials=spec.search.max_trials,
        seed=spec.search.seed,
        hyperparameters=build_hyperparameters(spec),
        directory=str(workdir),
        project_name="bare",
        overwrite=True,
    )
    stopping = spec.training.early_stopping
    tuner.search(
        data.x_train,
        data.y_train,
        validation_data=(data.x_val, data.y_val),
        callbacks=[
            keras.callbacks.EarlyStopping(
                monitor=spec.early_stopping_monitor,
                mode="max",
                patience=stopping.patience,
                restore_best_weights=stopping.restore_best_weights,
            )
        ],
        verbose=0,
    )
    wall = time.perf_counter() - started
    trials = tuner.oracle.get_best_trials(num_trials=spec.search.max_trials)
    hyperparameters = sorted(
        (
            int(t.trial_id),
            {k: v for k, v in t.hyperparameters.values.items() if not k.startswith("tuner/")},
        )
        for t in trials
    )
    return {
        "wall_s": wall,
        "fit_s": sum(fit_seconds),
        "trials": len(trials),
        "best_score": trials[0].score if trials else None,
        "hyperparameters": [hp for _, hp in hyperparameters],
    }


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def service_breakdown(job: dict[str, Any], trials: list[dict[str, Any]]) -> dict[str, float]:
    """Where the service's time outside ``model.fit`` goes, from the recorded timestamps.

    ``in_trial_runner``: the trial loop's own time outside fit (hyperparameters, model build and
    compile, per-epoch recording, clearing the session); ``claim_and_record``: the rest of the
    trial's span, from its claim (``started_at``) to its recorded end (``finished_at``): loading
    the job, saving a top-k model, the result and the oracle update under the job lock;
    ``between_trials``: from one trial's end to the next one's claim (dispatch, the broker, the
    worker picking the message up); ``job_start``/``job_end``: submission to the first claim and
    the last trial's end to the job's; ``client``: the rest of the client's wall (HTTP, polling).
    All are sums over the job, in seconds.
    """
    ordered = sorted(trials, key=lambda t: t["timings"]["started_at"])
    timings = [t["timings"] for t in ordered]
    spans = [(_at(t["finished_at"]) - _at(t["started_at"])).total_seconds() for t in timings]
    gaps = [
        (_at(b["started_at"]) - _at(a["finished_at"])).total_seconds()
        for a, b in itertools.pairwise(timings)
    ]
    created, finished = _at(job["created_at"]), _at(job["finished_at"])
    return {
        "fit": round(sum(t["fit_duration_s"] for t in timings), 3),
        "in_trial_runner": round(sum(t["duration_s"] - t["fit_duration_s"] for t in timings), 3),
        "claim_and_record": round(
            sum(span - t["duration_s"] for span, t in zip(spans, timings, strict=True)), 3
        ),
        "between_trials": round(sum(gaps), 3),
        "job_start": round((_at(timings[0]["started_at"]) - created).total_seconds(), 3),
        "job_end": round((finished - _at(timings[-1]["finished_at"])).total_seconds(), 3),
        "job_span": round((finished - created).total_seconds(), 3),
    }


def through_service(spec: dict[str, Any], env: dict[str, str], log_dir: Path) -> dict[str, Any]:
    """(b) and (c): submit over HTTP, one worker process, wait for the end."""
    with running_service(env, workers=1, log_dir=log_dir) as client:
        # a steady-state service: the worker has imported TensorFlow before the timed job
        run_job(client, WARM_UP_SPEC)
        job, wall = run_job(client, spec)
        page = client.trials(job["id"], sort="number", order="asc", limit=100)
    items = page["items"]
    breakdown = service_breakdown(job, items)
    breakdown["client"] = round(wall - breakdown["job_span"], 3)
    return {
        "wall_s": wall,
        "breakdown_s": breakdown,
        "fit_s": sum(t["timings"]["fit_duration_s"] or 0.0 for t in items),
        "trials": page["total"],
        "best_score": job["best_score"],
        "status": job["status"],
        "hyperparameters": [
            {k: v for k, v in t["hyperparameters"].items() if not k.startswith("tuner/")}
            for t in items
        ],
    }


def run_variant(variant: str, spec: dict[str, Any], root: Path, repeat: int) -> dict[str, Any]:
    workdir = root / f"{variant}-{repeat}"
    workdir.mkdir(parents=True)
    if variant == "bare_keras_tuner":
        return bare_keras_tuner(spec, workdir)
    if variant == "service_embedded":
        env = {"HPSEARCH_DATA_DIR": str(workdir / "data")}
        return through_service(spec, env, workdir / "logs")
    redis.Redis.from_url(REDIS_URL).flushdb()
    with fresh_postgres_database() as database_url:
        env = {
            "HPSEARCH_DATA_DIR": str(workdir / "data"),
            "HPSEARCH_DATABASE_URL": database_url,
            "HPSEARCH_BROKER_URL": REDIS_URL,
        }
        return through_service(spec, env, workdir / "logs")


VARIANTS = ("bare_keras_tuner", "service_embedded", "service_postgres_redis")


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    spec = overhead_spec(args.trials)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hpsearch-bench-") as tmp:
        for repeat in range(args.repeats):
            shift = repeat % len(VARIANTS)
            for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                result = run_variant(variant, spec, Path(tmp), repeat)
                result.update(variant=variant, repeat=repeat)
                result["overhead_per_trial_s"] = (result["wall_s"] - result["fit_s"]) / max(
                    1, result["trials"]
                )
                print({k: v for k, v in result.items() if k != "hyperparameters"}, flush=True)
                runs.append(result)
    reference = next(r["hyperparameters"] for r in runs if r["variant"] == "bare_keras_tuner")
    summary: dict[str, Any] = {}
    for variant in VARIANTS:
        mine = [r for r in runs if r["variant"] == variant]
        summary[variant] = {
            "median_wall_s": round(statistics.median(r["wall_s"] for r in mine), 3),
            "min_max_wall_s": [
                round(min(r["wall_s"] for r in mine), 3),
                round(max(r["wall_s"] for r in mine), 3),
            ],
            "median_overhead_per_trial_s": round(
                statistics.median(r["overhead_per_trial_s"] for r in mine), 4
            ),
            "same_hyperparameters_as_bare": all(r["hyperparameters"] == reference for r in mine),
        }
        if "breakdown_s" in mine[0]:
            summary[variant]["median_breakdown_per_trial_ms"] = {
                part: round(
                    1000 * statistics.median(r["breakdown_s"][part] / r["trials"] for r in mine), 1
                )
                for part in mine[0]["breakdown_s"]
                if part not in ("fit", "job_span")
            }
    bare = summary["bare_keras_tuner"]["median_wall_s"]
    ratios = {v: round(summary[v]["median_wall_s"] / bare, 3) for v in VARIANTS[1:]}
    for run in runs:
        run.pop("hyperparameters")
    path = write_result(
        "overhead",
        {
            "benchmark": "seeded random search on digits: bare Keras Tuner vs the service",
            "trials": args.trials,
            "repeats": args.repeats,
            "summary": summary,
            "ratio_to_bare": ratios,
            "targets": {"ratio": 1.05, "overhead_per_trial_s": 0.1},
            "runs": runs,
        },
    )
    print(summary, ratios, f"written to {path}", sep="\n")


if __name__ == "__main__":
    main()
