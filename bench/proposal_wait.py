"""Does a worker wait for the search algorithm's proposals? Bayesian (Keras Tuner's Gaussian
process) and TPE jobs on Pima diabetes with one worker, at most 1 trial of the job in flight
(every proposal on the critical path: the worker waits for it) and at the default 4 (the next
trials are proposed while the current one trains, in the fold that follows each result).

    .venv/bin/python -m bench.proposal_wait [--trials 40] [--data-root ../shared/data]

Embedded defaults (SQLite, kombu's SQLAlchemy broker), the search quality benchmark's space and
seed. Per run: the wall time, the sum of the trials' recorded proposal times (``proposal_s``),
and the worker's idle time: the gaps between one trial's end and the next one's start.
"""

from __future__ import annotations

import tempfile
from itertools import pairwise
from pathlib import Path
from typing import Any

from bench.common import arg_parser, run_job, running_service, stamp, write_result
from bench.quality_datasets import DATASETS, dataset_ref
from bench.search_quality import NUM_INITIAL_POINTS, WARM_UP_SPEC, search_spec

ARMS = (("bayesian", 1), ("bayesian", 4), ("tpe", 1), ("tpe", 4))


def measure(client: Any, ref: str, algorithm: str, trials: int) -> dict[str, Any]:
    method = "service_tpe" if algorithm == "tpe" else "bayesian"
    spec = search_spec(DATASETS["pima"], ref, method, trials, seed=1)
    spec["search"]["num_initial_points"] = NUM_INITIAL_POINTS
    job, wall_s = run_job(client, spec)
    items = client.trials(job["id"], limit=100)["items"]
    spans = sorted(
        (stamp(t["timings"]["started_at"]), stamp(t["timings"]["finished_at"]))
        for t in items
        if t["timings"]["started_at"] and t["timings"]["finished_at"]
    )
    idle = [max(0.0, (b[0] - a[1]).total_seconds()) for a, b in pairwise(spans)]
    proposals = [t["timings"]["proposal_s"] or 0.0 for t in items]
    return {
        "wall_s": round(wall_s, 2),
        "trials": len(items),
        "proposal_s_sum": round(sum(proposals), 2),
        "proposal_s_max": round(max(proposals), 3),
        "worker_idle_s_sum": round(sum(idle), 2),
        "worker_idle_s_max": round(max(idle), 3),
        "best_score": job["best_score"],
    }


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--data-root", type=Path, default=Path("../shared/data"))
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="hpsearch-bench-") as tmp:
        for algorithm, cap in ARMS:
            env = {
                "HPSEARCH_DATA_DIR": str(Path(tmp) / f"{algorithm}-{cap}"),
                "HPSEARCH_MAX_CONCURRENT_TRIALS_PER_JOB": str(cap),
                "HPSEARCH_TF_THREADS": "1",
            }
            with running_service(env, 1, Path(tmp) / f"logs-{algorithm}-{cap}") as client:
                ref = dataset_ref("pima", client, args.data_root.resolve(), Path(tmp))
                run_job(client, WARM_UP_SPEC)
                run = {
                    "algorithm": algorithm,
                    "in_flight": cap,
                    **measure(client, ref, algorithm, args.trials),
                }
            print(run, flush=True)
            runs.append(run)
    path = write_result(
        "proposal_wait",
        {
            "benchmark": "a worker waiting for proposals: 1 vs 4 trials in flight",
            "trials": args.trials,
            "runs": runs,
        },
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
