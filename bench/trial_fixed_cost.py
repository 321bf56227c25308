"""A trial's fixed cost: what a trial pays whatever its number of epochs, three ways, the same
network and batches, rotated trial by trial in one process with one TensorFlow thread, as a
worker runs its trials:

- ``keras_fit``: Keras's ``Model.fit`` (the worker before);
- ``epochs_loop``: the worker's own loop (``worker.training.epochs_loop``), Grappler on;
- ``epochs_loop_no_grappler``: the same with TensorFlow's graph rewriting off, as a worker's pool
  process runs it (``worker.training.threads.POOL_REWRITES``);
- ``epochs_loop_remapping_only``: the same with only Grappler's remapper on (the kernel fusions of
  a dense layer: ``worker.training.threads.graph_rewrites("remapping")``).

    .venv/bin/python -m bench.trial_fixed_cost [--trials 10] [--epochs 4]
        [--fashion-trials 3] [--data-dir ../shared/data/fashion_mnist] [--name trial_fixed_cost]

The network is the issue's: digits (scikit-learn's, 1,437 training and 360 validation rows), 2
hidden layers of 64 ReLU units, Adam, batches of 32, fed by ``worker.training.feeding``. Per
trial: building and compiling the model; the first epoch and the later ones (their median: the
steady epoch); the time in the fit call outside the epochs. The fixed cost is build + (first
epoch - steady epoch) + outside the epochs. A second case, a 10,000-row Fashion-MNIST subset
with the articles' 300-100-50-50-50 net (batch norm, dropout 0.2), checks that the steady epoch
does not get slower, and a third the ASHA benchmark's 2 x 128 net on its split of that subset
(``--fashion-trials 0`` skips both). Reports medians (min-max) per way.
Recording (the epochs' and the result's database writes) is measured by the overhead and search
quality benchmarks, not here.
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

SPEC: dict[str, Any] = {
    "dataset": {"name": "digits", "validation_split": 0.2, "split_seed": 0},
    "model": {"depth": 2, "units": 64, "activation": "relu"},
    "optimizer": {"name": "adam", "learning_rate": 0.001},
    "training": {"batch_size": 32, "early_stopping": {"enabled": False}},
    "search": {"max_trials": 1, "seed": 1},
}
FASHION: dict[str, Any] = {
    "dataset": {"name": "fashion_mnist", "validation_split": 0.1, "max_rows": 10000},
    "model": {
        "input": {"flatten": True, "standardize": True},
        "layers": [300, 100, 50, 50, 50],
        "batch_norm": "before",
        "dropout": 0.2,
    },
    "optimizer": {"name": "adam", "learning_rate": 0.001},
    "training": {"batch_size": 32, "early_stopping": {"enabled": False}},
    "search": {"max_trials": 1, "seed": 1},
}
#: the ASHA benchmark's most common kind of net (bench/asha_fashion.py): 2 x 128 ReLU, dropout
FASHION_ASHA: dict[str, Any] = {
    "dataset": {"name": "fashion_mnist", "validation_split": 0.2, "max_rows": 10000},
    "model": {
        "input": {"flatten": True, "standardize": True},
        "depth": 2,
        "units": 128,
        "dropout": 0.2,
    },
    "optimizer": {"name": "adam", "learning_rate": 0.001},
    "training": {"batch_size": 64, "early_stopping": {"enabled": False}},
    "search": {"max_trials": 1, "seed": 1},
}
WAYS = ("keras_fit", "epochs_loop", "epochs_loop_no_grappler", "epochs_loop_remapping_only")
#: Grappler's rewrites per way (``worker.training.threads.graph_rewrites``)
REWRITES = {"epochs_loop_no_grappler": "none", "epochs_loop_remapping_only": "remapping"}


def _trial(way: str, context: dict[str, Any], epochs: int) -> dict[str, float]:
    import keras

    from worker.training import feeding
    from worker.training.epochs_loop import fit_epochs
    from worker.training.threads import graph_rewrites

    data, hypermodel, hp = context["data"], context["hypermodel"], context["hp"]
    durations: list[float] = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            durations.append(time.perf_counter() - self.started)

    graph_rewrites(REWRITES.get(way, "all"))
    keras.backend.clear_session(free_memory=False)
    keras.utils.set_random_seed(1)
    started = time.perf_counter()
    model = hypermodel.build(hp)
    built = time.perf_counter()
    training = feeding.training_batches(data.x_train, data.y_train, 32, seed=1, threads=1)
    validation = feeding.validation_batches(data.x_val, data.y_val, 32, threads=1)
    if way == "keras_fit":
        model.fit(
            training, validation_data=validation, epochs=epochs, callbacks=[Timer()], verbose=0
        )
    else:
        fit_epochs(model, training, validation, epochs=epochs, initial_epoch=0, callbacks=[Timer()])
    ended = time.perf_counter()
    steady = statistics.median(durations[1:])
    outside = (ended - built) - sum(durations)
    build_s = built - started
    return {
        "build_and_compile_s": build_s,
        "first_epoch_s": durations[0],
        "steady_epoch_s": steady,
        "outside_epochs_s": outside,
        "fixed_s": build_s + (durations[0] - steady) + outside,
    }


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def _context(spec_json: dict[str, Any], epochs: int) -> dict[str, Any]:
    from search_spaces.builder import SpecHyperModel
    from search_spaces.hyperparameters import build_hyperparameters
    from search_spaces.schema import JobSpec
    from worker.training.datasets import load_dataset

    training = {**spec_json["training"], "epochs": epochs}
    spec = JobSpec.model_validate({**spec_json, "training": training})
    data = load_dataset(spec.dataset)
    return {
        "spec": spec,
        "data": data,
        "hypermodel": SpecHyperModel.for_training_split(spec, data.x_train),
        "hp": build_hyperparameters(spec),
    }


def _case(context: dict[str, Any], trials: int, epochs: int) -> dict[str, Any]:
    """Every way ``trials`` times, rotated, after one untimed trial each."""
    for way in WAYS:
        _trial(way, context, epochs)
    records: dict[str, list[dict[str, float]]] = {way: [] for way in WAYS}
    for index in range(trials):
        shift = index % len(WAYS)
        for way in WAYS[shift:] + WAYS[:shift]:
            records[way].append(_trial(way, context, epochs))
            print(way, {k: round(v, 3) for k, v in records[way][-1].items()}, flush=True)
    summary = {
        way: {name: _spread([r[name] for r in rows]) for name in rows[0]}
        for way, rows in records.items()
    }
    data = context["data"]
    return {
        "spec": context["spec"].model_dump(mode="json"),
        "rows": [len(data.x_train), len(data.x_val)],
        "trials_per_way": trials,
        "epochs": epochs,
        "summary": summary,
        "trials": records,
    }


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--trials", type=int, default=10, help="digits trials per way")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--fashion-trials", type=int, default=3)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--name", default="trial_fixed_cost", help="bench/results/NAME.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hpsearch-keras-") as keras_home:
        # Keras reads KERAS_HOME when it is imported: before TensorFlow
        if args.fashion_trials:
            seed_keras_cache(args.data_dir, Path(keras_home))
            os.environ["KERAS_HOME"] = keras_home
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        cases = {"digits 2 x 64": _case(_context(SPEC, args.epochs), args.trials, args.epochs)}
        if args.fashion_trials:
            context = _context(FASHION, 3)
            cases["Fashion-MNIST 10k, 300-100-50-50-50"] = _case(context, args.fashion_trials, 3)
            context = _context(FASHION_ASHA, 3)
            cases["Fashion-MNIST 10k, 2 x 128"] = _case(context, args.fashion_trials, 3)
    payload = {
        "benchmark": "a trial's fixed cost: Keras's fit against the worker's epoch loop",
        "cases": cases,
    }
    path = write_result(args.name, payload)
    for name, case in cases.items():
        print(name, {w: case["summary"][w]["fixed_s"] for w in WAYS})
    print(f"written to {path}")


if __name__ == "__main__":
    main()
