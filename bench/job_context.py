"""What a job's first trial pays in each pool process before its model is built: its dataset
(read and split) and its hypermodel (the standardization statistics of the training rows), for
jobs that follow one another on the same dataset, two ways rotated in one process:

- ``read_each_job``: the dataset read and split for every job (the worker before);
- ``remembered``: ``worker.training.datasets.remembered_dataset``, as ``context_for`` asks for it
  now (the first job reads it, the next ones find it).

    .venv/bin/python -m bench.job_context [--jobs 10] [--data-dir ../shared/data/fashion_mnist]

Cases: digits (scikit-learn's, all rows) and a 10,000-row Fashion-MNIST subset (the ASHA
benchmark's). The first job of each case and way is reported apart (it reads either way); the
other jobs' medians (min-max) are compared.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import arg_parser, write_result
from bench.fashion_table import DEFAULT_DATA_DIR, seed_keras_cache

CASES: dict[str, dict[str, Any]] = {
    "digits": {"name": "digits", "validation_split": 0.2, "split_seed": 0},
    "fashion_mnist_10k": {
        "name": "fashion_mnist",
        "max_rows": 10000,
        "validation_split": 0.2,
        "split_seed": 0,
    },
}
WAYS = ("read_each_job", "remembered")


def _job(way: str, dataset: dict[str, Any]) -> float:
    """Seconds to a new job's context: its dataset, then its hypermodel."""
    from search_spaces.builder import SpecHyperModel
    from worker.specs import parse_spec
    from worker.training.datasets import load_dataset, remembered_dataset

    started = time.perf_counter()
    spec = parse_spec({"dataset": dataset, "model": {"depth": 1, "units": 8}})
    data = remembered_dataset(spec.dataset) if way == "remembered" else load_dataset(spec.dataset)
    SpecHyperModel.for_training_split(spec, data.x_train)
    return time.perf_counter() - started


def _case(dataset: dict[str, Any], jobs: int) -> dict[str, Any]:
    first = {way: _job(way, dataset) for way in WAYS}
    rows: dict[str, list[float]] = {way: [] for way in WAYS}
    for index in range(jobs):
        for way in WAYS if index % 2 == 0 else WAYS[::-1]:
            rows[way].append(_job(way, dataset))
    medians = {way: statistics.median(values) for way, values in rows.items()}
    return {
        "first_job_s": {way: round(value, 4) for way, value in first.items()},
        "next_jobs_s": {
            way: {
                "median": round(medians[way], 4),
                "min": round(min(values), 4),
                "max": round(max(values), 4),
            }
            for way, values in rows.items()
        },
        "remembered_over_read": round(medians["remembered"] / medians["read_each_job"], 3),
        "jobs": rows,
    }


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--jobs", type=int, default=10, help="jobs per way after the first")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hpsearch-keras-") as keras_home:
        seed_keras_cache(args.data_dir, Path(keras_home))
        os.environ["KERAS_HOME"] = keras_home  # read when Keras is imported
        cases = {name: _case(dataset, args.jobs) for name, dataset in CASES.items()}
    path = write_result(
        "job_context",
        {"benchmark": "a job's context in a pool process: read each job or remembered", **cases},
    )
    for name, case in cases.items():
        print(name, case["first_job_s"], case["next_jobs_s"], case["remembered_over_read"])
    print(f"written to {path}")


if __name__ == "__main__":
    main()
