"""The search-quality benchmark's trial records and summaries: per search, its best score, the
time until a trial first reached the dataset's target, its wall time and epochs; per method, the
median (min-max) over seeds; and the check that a short search is the prefix of the long one.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from itertools import product
from typing import Any

from bench.quality_datasets import DATASETS, EPOCHS, QualityDataset
from search_spaces.direction import Direction


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


def levels(quality: QualityDataset) -> list[float]:
    """The target and levels a step short of it (an accuracy 0.25 to 2 points lower, a loss 1%
    to 5% higher): a target at both arms' best is reached or missed by single trials; the
    levels below it say how fast each arm gets near it."""
    if quality.direction is Direction.MAX:
        return [round(quality.target - step, 4) for step in (0, 0.0025, 0.005, 0.01, 0.02)]
    return [round(quality.target * (1 + step), 4) for step in (0, 0.01, 0.02, 0.05)]


def _first_reaching(
    trials: list[TrialRecord], direction: Direction, level: float
) -> tuple[float, int] | None:
    """``(end, index)`` of the first completed trial to end at least as good as ``level``.

    Only completed trials count: a pruned trial's partial score is no result (as in Optuna)."""
    hits = sorted(
        (t.finished_s, i)
        for i, t in enumerate(trials)
        if t.status == "completed" and t.score is not None and not direction.better(level, t.score)
    )
    return hits[0] if hits else None


def run_summary(trials: list[TrialRecord], quality: QualityDataset) -> dict[str, Any]:
    """Best score, time to the target (and to ``levels``), wall time and epochs of one search
    within a budget."""
    scored = [t for t in trials if t.status == "completed" and t.score is not None]
    hit = _first_reaching(trials, quality.direction, quality.target)
    reached = {
        str(level): _first_reaching(trials, quality.direction, level) for level in levels(quality)
    }
    return {
        "trials": len(trials),
        "completed": len(scored),
        "pruned": sum(t.status == "pruned" for t in trials),
        "best_score": quality.best([t.score for t in scored if t.score is not None]),
        "time_to_target_s": round(hit[0], 2) if hit else None,
        "trials_to_target": hit[1] + 1 if hit else None,
        "time_to_levels_s": {level: round(h[0], 2) if h else None for level, h in reached.items()},
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


def median_time(times: list[float | None]) -> float:
    """The median of times to a target over seeds, one never reached (None) counting as
    infinitely late (``math.inf`` if the median is)."""
    padded = [math.inf if t is None else t for t in times]
    return statistics.median(padded) if padded else math.inf


def aggregate(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Median and range over seeds; an unreached target counts as infinitely late."""
    times = [s["time_to_target_s"] for s in summaries]
    reached = sorted(t for t in times if t is not None)
    median = median_time(times)
    return {
        "seeds": len(summaries),
        "best_score": _spread([s["best_score"] for s in summaries if s["best_score"] is not None]),
        "reached_target": len(reached),
        "time_to_target_s": {
            "median": round(median, 2) if math.isfinite(median) else None,
            "min": round(reached[0], 2) if reached else None,
            "max": round(reached[-1], 2) if reached and len(reached) == len(times) else None,
        },
        "wall_s": _spread([s["wall_s"] for s in summaries if s["wall_s"] is not None]),
        "epochs_run": _spread([s["epochs_run"] for s in summaries]),
        "trials": _spread([s["trials"] for s in summaries]),
        "time_to_levels_s": {
            level: {
                "median": _finite(median_time([s["time_to_levels_s"][level] for s in summaries])),
                "reached": sum(s["time_to_levels_s"][level] is not None for s in summaries),
            }
            for level in (summaries[0]["time_to_levels_s"] if summaries else {})
        },
    }


def _finite(seconds: float) -> float | None:
    return round(seconds, 2) if math.isfinite(seconds) else None


def _configurations(trials: list[TrialRecord]) -> list[tuple[dict[str, Any], int]]:
    """Each trial's searched values (not Keras Tuner's ``tuner/`` ones) and epoch budget."""
    return [
        (
            {k: v for k, v in t.hyperparameters.items() if not k.startswith("tuner/")},
            t.nominal_epochs,
        )
        for t in trials
    ]


def _same(a: list[TrialRecord], b: list[TrialRecord]) -> dict[str, Any]:
    """How a short search compares with the same-length prefix of the long one."""
    strip, other = _configurations(a), _configurations(b)
    diffs = [
        abs(x.score - y.score)
        for x, y in zip(a, b, strict=False)
        if x.score is not None and y.score is not None
    ]
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


#: each Optuna method and the service method whose random start it shares (``--shared-start``)
SHARED_STARTS = {"tpe": "service_tpe", "tpe_median_pruner": "service_tpe_median"}


def shared_start_checks(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each Optuna run that started from the service's random start: did its first trials
    train the very configurations of the service's run of the same dataset and seed?"""
    checks = []
    for optuna_run in (r for r in runs if r.get("shared_start")):
        count = optuna_run["shared_start"]
        key = (optuna_run["dataset"], optuna_run["seed"], optuna_run["requested"])
        service = next(
            (
                r
                for r in runs
                if r["method"] == SHARED_STARTS[optuna_run["method"]]
                and (r["dataset"], r["seed"], r["requested"]) == key
            ),
            None,
        )
        check = {"dataset": key[0], "seed": key[1], "method": optuna_run["method"], "trials": count}
        if service is None:  # nothing ran to compare with: say so rather than skip
            checks.append(check | {"same_hyperparameters": None})
            continue
        ours, theirs = service["trials"][:count], optuna_run["trials"][:count]
        # Optuna's trials hold the values suggested (the enqueued ones); the service's hold the
        # space's fixed values too, which Optuna never suggests
        same = len(ours) == len(theirs) == count and all(
            t.hyperparameters
            and all(s.hyperparameters.get(k) == v for k, v in t.hyperparameters.items())
            for s, t in zip(ours, theirs, strict=True)
        )
        checks.append(check | {"same_hyperparameters": same})
    return checks


def summarize(
    runs: list[dict[str, Any]], datasets: list[str], budgets: list[int], methods: list[str]
) -> dict[str, Any]:
    """Per dataset, budget and method: the aggregate over seeds (long runs cut to the budget)."""
    largest = max(budgets)
    summary: dict[str, Any] = {}
    for dataset, budget, method in product(datasets, sorted(budgets), methods):
        mine = [
            run_summary(within_budget(r["trials"], method, budget), DATASETS[dataset])
            for r in runs
            if (r["dataset"], r["method"], r["requested"]) == (dataset, method, largest)
        ]
        summary.setdefault(dataset, {}).setdefault(str(budget), {})[method] = aggregate(mine)
    return summary


def compact(run: dict[str, Any]) -> dict[str, Any]:
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


def record(trial: dict[str, Any]) -> TrialRecord:
    """A trial back from its JSON form (``compact``), without its hyperparameters."""
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
