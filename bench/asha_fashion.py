"""ASHA against random search on a 10,000-row Fashion-MNIST subset, and ASHA on 1 against 2
workers: the same space, budget and seeds, through the service on PostgreSQL + Redis.

    .venv/bin/python -m bench.asha_fashion [--seeds 1 2 3] [--trials 30] [--target 0.85]
        [--also-targets 0.84 0.86] [--min-epochs 1] [--arms random asha asha_2_workers]
        [--name asha_fashion] [--data-dir ../shared/data/fashion_mnist]
    .venv/bin/python -m bench.asha_fashion --resummarize --name NAME

Per seed, in rotated order, each on a fresh database with workers warmed by a small job:
random search with one worker, ``search.pruner: {"kind": "asha"}`` (min 1 epoch, reduction
factor 3: rungs at 1 and 3 epochs of at most 9) with one worker, and the same ASHA job with two.
Reports per run the wall time, the time until a completed trial first reached ``--target``
validation accuracy (from the job's creation to that trial's end, as the API records them), the
best score, epochs trained and trials pruned, the trials' claim-to-end and fit times summed (where
two workers' time goes), and each trial (number, status, score, epochs, start, end, fit time);
then medians over the seeds and the ratios the issue sets: ASHA's time to target at most 0.5x
random's, and 2 workers' wall at most 0.55x one's. ``--also-targets`` reports the time to other
levels from the same runs (a target only early trials of the random order reach says little about
pruning). The epochs trained until each level (``epochs_to``) give what ASHA's time ratio would be
if trials cost nothing but their epochs; ``--resummarize`` recomputes the summary of
``bench/results/NAME.json`` from its runs (it trains nothing).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.common import (
    RESULTS_DIR,
    arg_parser,
    distributed_service,
    run_job,
    stamp,
    write_result,
)
from bench.fashion_table import DEFAULT_DATA_DIR, seed_keras_cache
from bench.quality_summary import median_time
from bench.worker_scaling import warm_up

EPOCHS = 9
ASHA = {"kind": "asha", "min_epochs": 1, "reduction_factor": 3}
#: (name, pruner, workers)
ARMS = (("random", None, 1), ("asha", ASHA, 1), ("asha_2_workers", ASHA, 2))


def search_spec(trials: int, seed: int, pruner: dict[str, Any] | None) -> dict[str, Any]:
    """The search: 1-3 dense layers on flattened, standardized 28x28 images."""
    search: dict[str, Any] = {"algorithm": "random", "max_trials": trials, "seed": seed}
    if pruner:
        search["pruner"] = pruner
    return {
        "name": f"bench-asha-{'asha' if pruner else 'random'}-{seed}",
        "dataset": {
            "name": "fashion_mnist",
            "max_rows": 10000,
            "validation_split": 0.2,
            "split_seed": 0,
        },
        "model": {
            "input": {"flatten": True, "standardize": True},
            "depth": {"type": "int", "min": 1, "max": 3},
            "units": {"type": "int", "min": 64, "max": 256, "step": 64},
            "activation": {"type": "choice", "values": ["relu", "elu", "selu"]},
            "kernel_initializer": "auto",
            "dropout": {"type": "choice", "values": [0.0, 0.2]},
        },
        "optimizer": {
            "name": {"type": "choice", "values": ["adam", "rmsprop", "sgd"]},
            "learning_rate": {"type": "float", "min": 1e-4, "max": 1e-1, "sampling": "log"},
        },
        "training": {"epochs": EPOCHS, "batch_size": 64, "early_stopping": {"patience": 3}},
        "search": search,
    }


def measure(arm: str, pruner: Any, workers: int, seed: int, args: Any, root: Path) -> dict:
    service = distributed_service(workers, root / "data", root / f"{arm}-{seed}")
    with service as (client, database_url):
        warm_up(client, database_url, workers)
        job, wall_s = run_job(client, search_spec(args.trials, seed, pruner))
        trials = client.trials(job["id"], limit=100)["items"]
    created = stamp(job["created_at"])
    records = [
        {
            "n": t["number"],
            "status": t["status"],
            "score": t["score"],
            "epochs": t["epochs_run"],
            "start_s": round((stamp(t["timings"]["started_at"]) - created).total_seconds(), 2),
            "end_s": round((stamp(t["timings"]["finished_at"]) - created).total_seconds(), 2),
            "fit_s": t["timings"]["fit_duration_s"],
        }
        for t in sorted(trials, key=lambda t: t["number"])
        if t["timings"]["finished_at"]
    ]
    targets = {str(level): time_to(records, level) for level in (args.target, *args.also_targets)}
    return {
        "arm": arm,
        "seed": seed,
        "workers": workers,
        "status": job["status"],
        "wall_s": round(wall_s, 2),
        "time_to_target_s": targets[str(args.target)],
        "time_to_targets_s": targets,
        "best_score": job["best_score"],
        "epochs_run": sum(t["epochs_run"] for t in trials),
        "pruned": sum(t["status"] == "pruned" for t in trials),
        "trials": len(trials),
        "trials_claim_to_end_s": round(sum(r["end_s"] - r["start_s"] for r in records), 2),
        "trials_fit_s": round(sum(r["fit_s"] or 0.0 for r in records), 2),
        "trial_records": records,
    }


def time_to(records: list[dict[str, Any]], level: float) -> float | None:
    """Seconds from the job's creation until a completed trial first reached ``level``."""
    hits = [
        r["end_s"] for r in records if r["status"] == "completed" and (r["score"] or 0) >= level
    ]
    return min(hits) if hits else None


def _median_time(runs: list[dict], arm: str, level: str) -> float | None:
    """Median over seeds of the time to ``level``; a seed that never reached it counts as
    infinitely late (None if the median is)."""
    median = median_time([r["time_to_targets_s"][level] for r in runs if r["arm"] == arm])
    return round(median, 3) if math.isfinite(median) else None


def _median(runs: list[dict], arm: str, key: str) -> float | None:
    values = [r[key] for r in runs if r["arm"] == arm and r[key] is not None]
    return round(statistics.median(values), 3) if values else None


def _of(summary: dict[str, Any], arm: str, key: str) -> float | None:
    return summary.get(arm, {}).get(key)


def epochs_to(records: list[dict[str, Any]], seconds: float | None) -> int | None:
    """Epochs of the trials that had ended ``seconds`` after the job's creation: with one
    worker, every epoch trained until a level was reached. Their ratio between two arms is the
    time ratio the arms would have if trials cost nothing but their epochs."""
    if seconds is None:
        return None
    return sum(r["epochs"] for r in records if r["end_s"] <= seconds)


def summarize(runs: list[dict[str, Any]], arms: list[str], levels: list[str]) -> dict[str, Any]:
    """The medians over seeds and the issue's ratios, from the runs (a seed that never reached a
    level counts as infinitely late). Adds each one-worker run's ``epochs_to_targets`` to it
    (with two workers, trials overlap: the epochs ended by a time are not what it cost)."""
    for run in runs:
        records, times = run["trial_records"], run["time_to_targets_s"]
        run["epochs_to_targets"] = (
            {level: epochs_to(records, times[level]) for level in levels}
            if run["workers"] == 1
            else None
        )
    summary = {
        arm: {
            key: _median(runs, arm, key) for key in ("wall_s", "best_score", "epochs_run", "pruned")
        }
        for arm in arms
    }
    by_level = {level: {arm: _median_time(runs, arm, level) for arm in arms} for level in levels}
    for arm in arms:
        summary[arm]["time_to_target_s"] = by_level[levels[0]][arm]
    epochs_by_level = {
        level: {
            arm: median_time([r["epochs_to_targets"][level] for r in runs if r["arm"] == arm])
            for arm in arms
            if arm != "asha_2_workers"
        }
        for level in levels
    }
    ttt = _of(summary, "asha", "time_to_target_s"), _of(summary, "random", "time_to_target_s")
    walls = _of(summary, "asha_2_workers", "wall_s"), _of(summary, "asha", "wall_s")
    return {
        "summary": summary,
        "seeds_reaching_target": {
            arm: sum(r["time_to_target_s"] is not None for r in runs if r["arm"] == arm)
            for arm in arms
        },
        "time_to_levels_s": by_level,
        "asha_over_random_time_to_levels": _ratios(by_level),
        "asha_over_random_time_to_target": round(ttt[0] / ttt[1], 3) if all(ttt) else None,
        "asha_2_over_1_workers_wall": round(walls[0] / walls[1], 3) if all(walls) else None,
        "epochs_to_levels": {
            level: {arm: e if math.isfinite(e) else None for arm, e in row.items()}
            for level, row in epochs_by_level.items()
        },
        "asha_over_random_epochs_to_levels": _ratios(epochs_by_level),
        "asha_over_random_epochs_to_levels_per_seed": {
            level: _per_seed_ratios(runs, level) for level in levels
        },
    }


def _ratios(by_level: dict[str, dict[str, float | None]]) -> dict[str, float | None]:
    """ASHA's (one worker) over random search's, per level (None when either never got there)."""
    ratios: dict[str, float | None] = {}
    for level, row in by_level.items():
        asha, random = row.get("asha"), row.get("random")
        finite = all(v is not None and math.isfinite(v) and v > 0 for v in (asha, random))
        ratios[level] = round(asha / random, 3) if finite else None  # type: ignore[operator]
    return ratios


def _per_seed_ratios(runs: list[dict[str, Any]], level: str) -> dict[str, float | None]:
    """Per seed, ASHA's epochs to ``level`` over random search's (one worker each)."""
    epochs = {
        (r["arm"], r["seed"]): r["epochs_to_targets"][level] for r in runs if r["workers"] == 1
    }
    ratios: dict[str, float | None] = {}
    for seed in sorted({r["seed"] for r in runs}):
        asha, random = epochs.get(("asha", seed)), epochs.get(("random", seed))
        ratios[str(seed)] = round(asha / random, 3) if asha and random else None
    return ratios


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--target", type=float, default=0.85)
    parser.add_argument("--also-targets", type=float, nargs="*", default=[0.84, 0.86])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--min-epochs", type=int, default=1, help="ASHA's first rung")
    parser.add_argument("--arms", nargs="+", choices=[a for a, _, _ in ARMS], default=None)
    parser.add_argument("--name", default="asha_fashion", help="bench/results/NAME.json")
    parser.add_argument(
        "--resummarize",
        action="store_true",
        help="only recompute NAME.json's summary from its recorded runs (trains nothing)",
    )
    args = parser.parse_args()
    if args.resummarize:
        payload = json.loads((RESULTS_DIR / f"{args.name}.json").read_text())
        arms = [a for a, _, _ in ARMS if any(r["arm"] == a for r in payload["runs"])]
        payload.update(summarize(payload["runs"], arms, list(payload["time_to_levels_s"])))
        # its "machine" (the run's) wins over today's
        print(payload["asha_over_random_epochs_to_levels"], write_result(args.name, payload))
        return
    pruner = {**ASHA, "min_epochs": args.min_epochs}
    arms = [
        (arm, pruner if asha else None, workers)
        for arm, asha, workers in ARMS
        if args.arms is None or arm in args.arms
    ]
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hpsearch-bench-") as tmp:
        root = Path(tmp)
        seed_keras_cache(args.data_dir, root / "keras")
        os.environ["KERAS_HOME"] = str(root / "keras")
        for index, seed in enumerate(args.seeds):
            shift = index % len(arms)
            for arm, arm_pruner, workers in arms[shift:] + arms[:shift]:
                runs.append(measure(arm, arm_pruner, workers, seed, args, root))
                print({k: v for k, v in runs[-1].items() if k != "trial_records"}, flush=True)
    levels = [str(level) for level in (args.target, *args.also_targets)]
    payload = {
        "benchmark": "ASHA vs random search on Fashion-MNIST 10k; ASHA on 1 vs 2 workers",
        "spec": search_spec(args.trials, 0, pruner),
        "target": args.target,
        "seeds": args.seeds,
        **summarize(runs, [arm for arm, _, _ in arms], levels),
        "runs": runs,
    }
    path = write_result(args.name, payload)
    print(
        payload["summary"],
        payload["asha_over_random_time_to_target"],
        payload["asha_over_random_time_to_levels"],
        payload["asha_over_random_epochs_to_levels"],
        payload["asha_2_over_1_workers_wall"],
        f"written to {path}",
        sep="\n",
    )


if __name__ == "__main__":
    main()
