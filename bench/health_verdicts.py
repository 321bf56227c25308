"""Are the training-health verdicts right? The labelled cases of ``bench/health_cases.py`` (the
articles' nets that fail and that train well) run through the service, each with ``--seeds``
seeds, and the verdicts it stored are scored against their labels: per verdict, precision and
recall; the share of healthy nets flagged with any problem; the share of failing nets flagged.

    .venv/bin/python -m bench.health_verdicts [--seeds 1 2] [--cases fashion pima ...]
        (a subset of --cases reruns those and keeps the other cases' records)
        [--data-dir ../shared/data] [--records bench/results/health_verdicts_records.json.gz]
        [--rejudge]

Every trial's record (its epochs' metrics and probe records, the job's baseline, the facts a
verdict reads) is kept in ``--records``; ``--rejudge`` scores those records again without
training (``health.verdicts.judge`` run here, with its current thresholds), and the threshold
sweep (``bench/health_thresholds.py``) reads them too. Targets (issue 16): healthy nets
flagged at most 5% of the time; precision and recall per verdict committed.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from api.client import ApiClient
from bench.common import RESULTS_DIR, arg_parser, running_service, write_result
from bench.fashion_table import seed_keras_cache
from bench.health_cases import BASES, CASES, NOTES, PROBLEMS, Case
from health.baseline import comparable
from health.hopeless import hopeless
from health.verdicts import EpochRecord, TrialFacts, judge, no_better_than
from search_spaces.study_spec import deep_merge

DEFAULT_RECORDS = RESULTS_DIR / "health_verdicts_records.json.gz"
BASE_OF = {c.name: c.base for c in CASES}
SERVICE_ENV = {"HPSEARCH_TF_THREADS": "1", "HPSEARCH_QUOTA_ACTIVE_JOBS": "100"}
PIMA_FILE, PIMA_TARGET = "diabetes.csv", "Outcome"


def case_spec(case: Case, seed: int, pima_ref: str | None) -> dict[str, Any]:
    """The job spec of ``case`` with ``seed``: one trial of its fixed configuration."""
    spec = deep_merge(BASES[case.base], case.patch)
    spec = deep_merge(spec, {"name": f"{case.name} (seed {seed})"})
    spec["search"] = {**spec.get("search", {}), "max_trials": 1, "seed": seed}
    if case.base == "pima":
        spec["dataset"]["name"] = pima_ref
    return spec


def run_cases(
    cases: Sequence[Case],
    seeds: Sequence[int],
    data_dir: Path,
    records_path: Path,
    kept: Sequence[dict[str, Any]] = (),
) -> list[dict]:
    """Every case with every seed through a fresh service (SQLite, one worker); each trial's
    record as ``record_of`` makes it, saved to ``records_path`` as they come (after
    ``kept``)."""
    work = Path(tempfile.mkdtemp(prefix="hpsearch-health-verdicts-"))
    seed_keras_cache(data_dir / "fashion_mnist", work / "keras")
    env = {
        **SERVICE_ENV,
        "HPSEARCH_DATA_DIR": str(work / "data"),
        "KERAS_HOME": str(work / "keras"),
    }
    with running_service(env, workers=1, log_dir=work / "logs") as client:
        pima = None
        if any(c.base == "pima" for c in cases):
            pima_csv = data_dir / "pima_diabetes" / PIMA_FILE
            pima = client.upload_dataset(pima_csv, target=PIMA_TARGET, name="pima")["ref"]
        submitted = [
            (case, seed, client.submit(case_spec(case, seed, pima))["id"])
            for case in cases
            for seed in seeds
        ]
        records = []
        for case, seed, job_id in submitted:
            _wait(client, job_id)
            records.append(record_of(client, case, seed, job_id))
            save_records(records_path, [*kept, *records])
            print(f"{case.name} (seed {seed}): {records[-1]['stored']}", flush=True)
    return records


def _wait(client: ApiClient, job_id: str, timeout: float = 1800) -> None:
    deadline = time.monotonic() + timeout
    while client.job(job_id)["status"] not in ("succeeded", "failed", "cancelled"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} still running after {timeout} s")
        time.sleep(1)


def record_of(client: ApiClient, case: Case, seed: int, job_id: str) -> dict[str, Any]:
    """What a verdict reads of the job's one trial, as the service stored it, and the verdicts
    the service gave it."""
    job = client.job(job_id)
    trial = client.trial(job_id, 0)
    health = trial.get("health") or {}
    spec = job["spec"]
    last = max((e.get("execution", 0) for e in trial["epochs"]), default=0)
    return {
        "case": case.name,
        "seed": seed,
        "status": trial["status"],
        "score": trial["score"],
        "objective": job["objective"],
        "maximize": job["direction"] == "max",
        "baseline": health.get("baseline"),
        "epochs_allowed": _fixed(spec["training"]["epochs"]),
        "hyperparameters": _judged_values(spec, trial.get("hyperparameters") or {}),
        "epochs": [
            {"epoch": e["epoch"], "metrics": e["metrics"], "health": stored_keys(e.get("health"))}
            for e in trial["epochs"]
            if e.get("execution", 0) == last
        ],
        "stored": [v["code"] for v in health.get("verdicts", [])],
    }


def _aliases(model: Any) -> dict[str, str]:
    return {n: str(f.validation_alias or n) for n, f in model.model_fields.items()}


def stored_keys(health: dict[str, Any] | None) -> dict[str, Any] | None:
    """An epoch's probe record as the API returns it, back in the keys it is stored (and
    judged) with: ``gradient_norm`` -> ``g``, ``output_std`` -> ``out_std``..."""
    from api.health_schemas import EpochHealth, LayerHealth

    if health is None:
        return None
    epoch, layer = _aliases(EpochHealth), _aliases(LayerHealth)
    found = {epoch.get(k, k): v for k, v in health.items() if k != "layers"}
    found["layers"] = [{layer.get(k, k): v for k, v in x.items()} for x in health["layers"]]
    return found


def _fixed(param: Any) -> Any:
    """A stored spec's fixed parameter (``{"type": "fixed", "value": v}``) as its value."""
    return param["value"] if isinstance(param, dict) else param


def _judged_values(spec: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    from search_spaces.schema import InputSpec
    from worker.training.trial_health import judged_values

    return judged_values(InputSpec.model_validate(spec["model"]["input"]), values)


def rejudged(record: dict[str, Any]) -> list[str]:
    """The verdict codes ``health.verdicts.judge`` gives ``record`` with today's thresholds."""
    if record["status"] not in ("completed", "diverged") or not record["epochs"]:
        return []
    facts = TrialFacts(
        epochs=[EpochRecord(e["epoch"], e["metrics"], e["health"]) for e in record["epochs"]],
        objective=record["objective"],
        maximize=record["maximize"],
        baseline=record["baseline"],
        score=record["score"],
        diverged=record["status"] == "diverged",
        epochs_allowed=record["epochs_allowed"],
        hyperparameters=record["hyperparameters"],
    )
    return [v.code for v in judge(facts)]


def simulate_stops(records: Sequence[dict[str, Any]], patience: int) -> dict[str, Any]:
    """``health.hopeless`` replayed on the full runs: the trials it would have stopped, the
    epochs that saves, and the stopped trials whose later epochs beat the baseline (false
    stops).
    Replayed on the probes the run took (the worker also probes the epoch a streak reaches the
    patience, so it decides with a fresher probe than this replay has)."""
    stopped, saved, false_stops, by_case = 0, 0, [], {}
    total = sum(len(r["epochs"]) for r in records)
    for record in records:
        epochs = [EpochRecord(e["epoch"], e["metrics"], e["health"]) for e in record["epochs"]]
        regularizer = record["hyperparameters"].get("regularizer")
        baseline = record["baseline"] if comparable(record["objective"], regularizer) else None
        at = next(
            (i for i in range(1, len(epochs) + 1)
             if hopeless(epochs[:i], record["objective"], record["maximize"], baseline, patience)),
            None,
        )  # fmt: skip
        if at is None:
            continue
        stopped += 1
        saved += len(epochs) - at
        by_case[record["case"]] = by_case.get(record["case"], 0) + 1
        later = [e.metrics.get(record["objective"]) for e in epochs[at:]]
        later = [v for v in later if isinstance(v, int | float) and math.isfinite(v)]
        went_on = (max if record["maximize"] else min)(later) if later else None
        if went_on is not None and not no_better_than(
            went_on, record["baseline"], record["maximize"]
        ):
            false_stops.append({"case": record["case"], "seed": record["seed"], "stopped_at": at,
                                "best_after_stop": went_on, "baseline": record["baseline"]})  # fmt: skip
    return {
        "patience": patience,
        "trials_stopped": stopped,
        "epochs_saved": saved,
        "epochs_saved_share": _share(saved, total),
        "stopped_by_case": by_case,
        "false_stops": false_stops,
    }


def score(records: Sequence[dict[str, Any]], judged: Sequence[list[str]]) -> dict[str, Any]:
    """Precision and recall per verdict, healthy nets flagged, failing nets flagged."""
    cases = {c.name: c for c in CASES}
    counts = {code: {"tp": 0, "fp": 0, "fn": 0} for code in PROBLEMS + NOTES}
    healthy, flagged_healthy, failing, flagged_failing = 0, 0, 0, 0
    wrong: list[dict[str, Any]] = []
    for record, codes in zip(records, judged, strict=True):
        case = cases[record["case"]]
        found = set(codes)
        for code in counts:
            if code in case.expect:
                counts[code]["tp" if code in found else "fn"] += 1
            elif code in found and code not in case.allow:
                counts[code]["fp"] += 1
        problems = found & set(PROBLEMS)
        if case.healthy is True:
            healthy += 1
            flagged_healthy += bool(problems)
        elif case.healthy is False:
            failing += 1
            flagged_failing += bool(problems & set(case.expect + case.allow))
        missed = set(case.expect) - found
        extra = found - set(case.expect) - set(case.allow) - {"healthy"}
        if missed or extra:
            wrong.append(
                {"case": case.name, "seed": record["seed"], "missed": sorted(missed),
                 "unexpected": sorted(extra), "verdicts": codes}
            )  # fmt: skip
    per_verdict = {code: {**c, **_rates(c)} for code, c in counts.items() if any(c.values())}
    return {
        "per_verdict": per_verdict,
        "healthy_flagged": {"runs": healthy, "flagged": flagged_healthy,
                            "share": _share(flagged_healthy, healthy)},
        "failing_flagged": {"runs": failing, "flagged": flagged_failing,
                            "share": _share(flagged_failing, failing)},
        "mislabelled_runs": wrong,
    }  # fmt: skip


def _rates(c: dict[str, int]) -> dict[str, float | None]:
    return {
        "precision": _share(c["tp"], c["tp"] + c["fp"]),
        "recall": _share(c["tp"], c["tp"] + c["fn"]),
    }


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 3)


def load_records(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt") as f:
        return json.load(f)


def save_records(path: Path, records: list[dict[str, Any]]) -> None:
    with gzip.open(path, "wt", compresslevel=9) as f:
        json.dump(records, f, separators=(",", ":"))


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cases", nargs="+", default=sorted(BASES), choices=sorted(BASES))
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--records", type=Path, default=DEFAULT_RECORDS)
    parser.add_argument("--rejudge", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    started = time.perf_counter()
    if args.rejudge:
        records = load_records(args.records)
    else:
        cases = [c for c in CASES if c.base in args.cases]
        # the other bases' records are kept (a case no longer labelled is dropped)
        kept = [
            r
            for r in (load_records(args.records) if args.records.exists() else [])
            if r["case"] in BASE_OF and BASE_OF[r["case"]] not in args.cases
        ]
        records = kept + run_cases(cases, args.seeds, args.data_dir.resolve(), args.records, kept)
    judged = [rejudged(r) for r in records]
    disagree = [r["case"] for r, j in zip(records, judged, strict=True) if r["stored"] != j]
    result = score(records, judged)
    result["hopeless_stops"] = [simulate_stops(records, p) for p in (3, 5, 10)]
    write_result(
        "health_verdicts",
        {
            "benchmark": "training-health verdicts against the articles' labelled cases",
            "cases": len({r["case"] for r in records}),
            "runs": len(records),
            "seeds": sorted({r["seed"] for r in records}),
            "records": args.records.name,
            "rejudged_differs_from_stored": disagree,
            "seconds": round(time.perf_counter() - started, 1),
            **result,
            "target": "healthy nets flagged at most 5% of the time",
        },
    )
    for code, rates in result["per_verdict"].items():
        print(f"{code:22} precision {rates['precision']}  recall {rates['recall']}  {rates}")
    print(
        "healthy flagged", result["healthy_flagged"], "failing flagged", result["failing_flagged"]
    )
    for wrong in result["mislabelled_runs"]:
        print("  ", wrong)
    for stops in result["hopeless_stops"]:
        print("hopeless stops", stops)


if __name__ == "__main__":
    main()
