"""What recording training health costs: the same trials fitted with the health probe and
without it, alternated, through the worker's own fit (``worker.training.fit.fit_trial``), one
TensorFlow thread as a worker runs.

    .venv/bin/python -m bench.health_cost [--repeats 5] [--data-dir ../shared/data/fashion_mnist]

Cases: digits (scikit-learn's, 1,437 training rows) with a 2 x 64 ReLU net, 20 epochs; and a
10,000-row Fashion-MNIST subset (``--data-dir``: the four files and SHA256SUMS) with the
articles' 300-100-50-50-50 net, 5 epochs. Reports per case the median fit time with and without
the probe (and min-max), their ratio, and the probe's own seconds as recorded on each epoch.
Target: the probe adds at most 5% to fit time.
"""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.common import arg_parser, write_result
from bench.fashion_table import DEFAULT_DATA_DIR, seed_keras_cache

CASES: dict[str, dict[str, Any]] = {
    "digits, 2 x 64 relu, 20 epochs": {
        "dataset": {"name": "digits", "validation_split": 0.2},
        "model": {"depth": 2, "units": 64, "activation": "relu", "kernel_initializer": "he_normal"},
        "optimizer": {"name": "adam", "learning_rate": 0.001},
        "training": {"epochs": 20, "batch_size": 32, "early_stopping": {"enabled": False}},
        "search": {"max_trials": 1, "seed": 1},
    },
    "Fashion-MNIST 10k rows, 300-100-50-50-50 relu, 5 epochs": {
        "dataset": {"name": "fashion_mnist", "validation_split": 0.1, "max_rows": 10000},
        "model": {
            "input": {"flatten": True, "standardize": True},
            "layers": [300, 100, 50, 50, 50],
            "activation": "relu",
            "kernel_initializer": "he_normal",
        },
        "optimizer": {"name": "sgd", "learning_rate": 0.001},
        "training": {"epochs": 5, "batch_size": 32, "early_stopping": {"enabled": False}},
        "search": {"max_trials": 1, "seed": 1},
    },
}


def _fit(name: str, spec_json: dict[str, Any], probe: bool) -> tuple[float, float, int]:
    """One trial's fit: its fit seconds, the probe's seconds over its epochs, epochs probed."""
    from search_spaces.hyperparameters import hyperparameters_from_values
    from worker.training.fit import TrialRun, fit_trial
    from worker.training.run import context_for

    spec_json = {**spec_json, "training": {**spec_json["training"], "health_probe": probe}}
    ctx = context_for(f"{name} probe={probe}", spec_json)  # loaded once per case and setting
    probed: list[float] = []

    def on_epoch(report: Any) -> None:
        if report.health is not None:
            probed.append(report.health["probe_s"])

    run = TrialRun(ctx, 0, on_epoch, lambda number: None)
    outcome = fit_trial(run, hyperparameters_from_values(ctx.spec, {}))
    if outcome.failure_reason:
        raise RuntimeError(outcome.failure_reason)
    return outcome.fit_duration_s, sum(probed), len(probed)


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args()
    keras_home = Path(tempfile.mkdtemp(prefix="hpsearch-health-cost-"))
    checksums = seed_keras_cache(args.data_dir, keras_home)
    os.environ["KERAS_HOME"] = str(keras_home)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)

    cases = {}
    for name, spec in CASES.items():
        _fit(name, spec, True)  # untimed: the dataset loaded, TensorFlow warm
        fits: dict[bool, list[float]] = {True: [], False: []}
        probe_s: list[float] = []
        probed_epochs = 0
        for repeat in range(args.repeats):
            for probe in (True, False) if repeat % 2 == 0 else (False, True):
                seconds, spent, probed_epochs_now = _fit(name, spec, probe)
                fits[probe].append(seconds)
                if probe:
                    probe_s.append(spent)
                    probed_epochs = probed_epochs_now
        with_probe, without = statistics.median(fits[True]), statistics.median(fits[False])
        cases[name] = {
            "fit_s_with_probe": {"median": round(with_probe, 3), "min_max": _span(fits[True])},
            "fit_s_without": {"median": round(without, 3), "min_max": _span(fits[False])},
            "ratio": round(with_probe / without, 3),
            "probe_s_per_fit": {"median": round(statistics.median(probe_s), 3)},
            "probe_share_of_fit": round(statistics.median(probe_s) / with_probe, 3),
            "epochs_probed": probed_epochs,
        }
        print(name, cases[name], flush=True)
    write_result(
        "health_cost",
        {
            "benchmark": "fit time with and without the health probe (same trials, alternated)",
            "repeats": args.repeats,
            "tensorflow_threads": 1,
            "fashion_mnist_sha256": checksums,
            "cases": cases,
            "target": "the probe adds at most 5% to fit time",
        },
    )


def _span(values: list[float]) -> list[float]:
    return [round(min(values), 3), round(max(values), 3)]


if __name__ == "__main__":
    main()
