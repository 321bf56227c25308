"""The articles' table: Fashion-MNIST, MLP 300-100-50-50-50, SGD 1e-3, 20 epochs, 10% validation.

    .venv/bin/python -m bench.fashion_table [--data-dir ../shared/data/fashion_mnist] [--repeats 1]
    .venv/bin/python -m bench.fashion_table --epochs 1 --max-rows 2000   # a quick smoke run
    .venv/bin/python -m bench.fashion_table --preprocessing service      # the service's defaults

One fixed spec per variant of ../shared/TECHNIQUES.md (Keras defaults, zeros init, he_normal,
leaky ReLU, randomized leaky ReLU, SELU with lecun_normal, batch norm with he_normal), built from
``search_spaces/examples/fashion_mnist_300_100_50.json``, is submitted over HTTP to the real
service (embedded defaults, one worker process, one TensorFlow thread as configured by default).
The Fashion-MNIST files come from ``--data-dir`` (checked against its SHA256SUMS) and are copied
into a temporary ``KERAS_HOME`` given to the service's processes, so Keras's loader reads them
offline and nothing is written under the user's home. Each repetition uses another seed (init
and sampler) and rotates the order of the variants. Reports, per variant, our validation
accuracy (best epoch, as the service scores a trial, and last epoch) and training time beside
the published ones. Target: each within 1.5 points of the published accuracy.

``--preprocessing article`` (the default) makes each spec express the article's code: pixels
scaled by 1/255 (``model.input.rescale``, no standardization), the last 10% of the rows as
validation (``dataset.split: last``, as Keras's ``validation_split``) and, for batch norm, a BN
layer on each hidden Dense's input and none after the last (``model.batch_norm: before_dense``).
Writes ``bench/results/fashion_table.json``. ``--preprocessing service`` keeps the service's
defaults instead (inputs standardized on the training split, a stratified sample as validation,
BN on the input and after each hidden activation) and writes
``bench/results/fashion_table_service_preprocessing.json``. A shortened run adds ``_smoke``.

``--article-code`` runs instead, in this process with bare Keras (no service, one TensorFlow
thread like a worker), the article's own code for the chosen variants: pixels scaled by 1/255 (the
article does not show its preprocessing; 1/255 is what the book it follows does), a BN layer
before each hidden Dense and none after the last, and Keras's ``validation_split=0.1`` (the last
6,000 rows, not a stratified sample). It tells how much of a gap comes from those differences
rather than from the service. Writes ``bench/results/fashion_table_article_code.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Any

from api.client import ApiClient
from bench.common import arg_parser, run_job, running_service, write_result
from search_spaces.example_specs import example_spec
from search_spaces.study_spec import deep_merge

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data" / "fashion_mnist"
FASHION_FILES = (
    "train-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
)
BASE_SEED = 42
TARGET_POINTS = 1.5

#: the article's numbers: validation accuracy (%) and seconds for 20 epochs on its machine.
PUBLISHED: dict[str, dict[str, float]] = {
    "defaults": {"val_accuracy_pct": 85.18, "seconds": 99.03},
    "zeros_init": {"val_accuracy_pct": 9.25, "seconds": 69.44},
    "he_normal": {"val_accuracy_pct": 86.37, "seconds": 99.76},
    "leaky_relu": {"val_accuracy_pct": 86.15, "seconds": 101.88},
    "rrelu": {"val_accuracy_pct": 86.30, "seconds": 113.59},
    "selu_lecun_normal": {"val_accuracy_pct": 86.47, "seconds": 106.26},
    "batch_norm_he_normal": {"val_accuracy_pct": 86.85, "seconds": 167.62},
}

#: the article's preprocessing and split, over every variant's spec (``--preprocessing article``).
ARTICLE_PREPROCESSING: dict[str, Any] = {
    "dataset": {"split": "last"},
    "model": {"input": {"rescale": 1 / 255, "standardize": False, "batch_norm": False}},
}

#: each variant's ``model`` section over the example spec's, and how it maps to the article
#: (the notes describe the ``--preprocessing service`` specs; the article ones are exact);
#: ``article_model``: what ``--preprocessing article`` changes in it beyond the preprocessing.
VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {
        "model": {"activation": "relu", "kernel_initializer": "glorot_uniform"},
        "note": "Keras defaults: glorot_uniform, relu",
    },
    "zeros_init": {
        "model": {"activation": "relu", "kernel_initializer": "zeros"},
        "note": "hidden kernels all zeros (the output layer keeps glorot_uniform, as in Keras)",
    },
    "he_normal": {
        "model": {"activation": "relu", "kernel_initializer": "he_normal"},
        "note": "relu with he_normal",
    },
    "leaky_relu": {
        "model": {
            "activation": "leaky_relu",
            "leaky_alpha": 0.2,
            "kernel_initializer": "he_normal",
        },
        "note": "LeakyReLU(0.2) with he_normal; the article does not show its alpha or init",
    },
    "rrelu": {
        "model": {
            "activation": "rrelu",
            "rrelu_lower": 1 / 8,
            "rrelu_upper": 1 / 3,
            "kernel_initializer": "he_normal",
        },
        "note": "slope drawn in [1/8, 1/3] while training, the mean at inference; he_normal "
        "(the article does not show its range or init)",
    },
    "selu_lecun_normal": {
        "model": {"activation": "selu", "kernel_initializer": "lecun_normal"},
        "note": "selu with lecun_normal, standardized inputs",
    },
    "batch_norm_he_normal": {
        "model": {
            "activation": "relu",
            "kernel_initializer": "he_normal",
            "input": {"flatten": True, "standardize": True, "batch_norm": True},
            "batch_norm": "after",
        },
        # the article's layout: BN before each hidden Dense, none before the output
        "article_model": {"batch_norm": "before_dense"},
        "note": "BN on the input and after each hidden activation, so a BN layer precedes every "
        "hidden Dense as in the article, plus one after the last hidden layer (50 units) that "
        "the article does not have (the article specs use before_dense instead)",
    },
}


# -- data ------------------------------------------------------------------------------------


def read_checksums(data_dir: Path) -> dict[str, str]:
    """File name -> SHA-256 from ``SHA256SUMS``."""
    sums = {}
    for line in (data_dir / "SHA256SUMS").read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.strip().lstrip("*")] = digest
    return sums


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def seed_keras_cache(data_dir: Path, keras_home: Path) -> dict[str, str]:
    """Check the four Fashion-MNIST files against SHA256SUMS and copy them where Keras's loader
    looks (``$KERAS_HOME/datasets/fashion-mnist``); returns their checksums."""
    sums = read_checksums(data_dir)
    target = keras_home / "datasets" / "fashion-mnist"
    target.mkdir(parents=True, exist_ok=True)
    checked = {}
    for name in FASHION_FILES:
        source = data_dir / name
        actual = sha256_of(source)
        if sums.get(name) != actual:
            raise SystemExit(f"{source}: SHA-256 {actual} does not match SHA256SUMS")
        shutil.copyfile(source, target / name)
        checked[name] = actual
    return checked


# -- specs -----------------------------------------------------------------------------------


def variant_spec(
    variant: str, seed: int, epochs: int, max_rows: int | None, preprocessing: str = "article"
) -> dict[str, Any]:
    """The example spec with the variant's model section, one fixed configuration."""
    spec = deep_merge(
        example_spec("fashion_mnist_300_100_50.json"), {"model": VARIANTS[variant]["model"]}
    )
    if preprocessing == "article":
        spec = deep_merge(spec, ARTICLE_PREPROCESSING)
        spec = deep_merge(spec, {"model": VARIANTS[variant].get("article_model", {})})
    spec["name"] = f"bench-fashion-{variant}"
    spec["training"]["epochs"] = epochs
    spec["search"]["seed"] = seed
    if max_rows is not None:
        spec["dataset"]["max_rows"] = max_rows
    return spec


# -- one run ---------------------------------------------------------------------------------


def trial_result(client: ApiClient, job: dict[str, Any]) -> dict[str, Any]:
    """Validation accuracy and times of the job's single trial, read back over the API."""
    trial = client.trial(job["id"], 0)
    epochs = [e for e in trial["epochs"] if e["execution"] == 0]
    val = [e["metrics"].get("val_accuracy") for e in epochs]
    return {
        "trial_status": trial["status"],
        "epochs_run": trial["epochs_run"],
        "best_epoch": trial["best_epoch"],
        "val_accuracy_best": trial["score"],
        "val_accuracy_last": val[-1] if val else None,
        "val_accuracy_by_epoch": val,
        "fit_s": trial["timings"]["fit_duration_s"],
        "trial_s": trial["timings"]["duration_s"],
        "median_epoch_s": statistics.median(e["duration_s"] for e in epochs) if epochs else None,
        "parameter_count": trial["parameter_count"],
    }


def run_variant(
    client: ApiClient,
    variant: str,
    seed: int,
    epochs: int,
    max_rows: int | None,
    preprocessing: str,
) -> dict[str, Any]:
    spec = variant_spec(variant, seed, epochs, max_rows, preprocessing)
    job, wall = run_job(client, spec, timeout=4 * 3600)
    result: dict[str, Any] = {
        "variant": variant,
        "seed": seed,
        "job_status": job["status"],
        "job_error": job["error"],
        "job_wall_s": round(wall, 3),
        "warnings": [w["code"] for w in job["warnings"]],
        "rows_train": (job["dataset_info"] or {}).get("rows_train"),
        "rows_val": (job["dataset_info"] or {}).get("rows_val"),
        "split": (job["dataset_info"] or {}).get("split"),
    }
    if job["status"] == "succeeded":
        result.update(trial_result(client, job))
    return result


# -- the article's own code, bare Keras -----------------------------------------------------


def read_idx(path: Path, offset: int) -> Any:
    """The array of a gzipped IDX file (``offset``: 16 for images, 8 for labels)."""
    import gzip

    import numpy as np

    with gzip.open(path, "rb") as handle:
        return np.frombuffer(handle.read(), np.uint8, offset=offset)


def article_hidden_layers(variant: str) -> list[Any]:
    """The article's hidden stack for ``variant``: 300-100-50-50-50."""
    import keras

    from search_spaces.keras_objects import RandomizedLeakyReLU

    model = VARIANTS[variant]["model"]
    init = model["kernel_initializer"]
    activation = model["activation"]
    layers: list[Any] = []
    for units in (300, 100, 50, 50, 50):
        if variant == "batch_norm_he_normal":
            layers.append(keras.layers.BatchNormalization())
        if activation in ("leaky_relu", "rrelu"):
            layers.append(keras.layers.Dense(units, kernel_initializer=init))
            layers.append(
                keras.layers.LeakyReLU(negative_slope=model["leaky_alpha"])
                if activation == "leaky_relu"
                else RandomizedLeakyReLU(model["rrelu_lower"], model["rrelu_upper"])
            )
        else:
            layers.append(keras.layers.Dense(units, activation, kernel_initializer=init))
    return layers


def article_code(variant: str, data_dir: Path, seed: int, epochs: int) -> dict[str, Any]:
    """The article's code for ``variant`` (see the module docstring); val accuracy and time."""
    import time

    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    keras.utils.set_random_seed(seed)
    y = read_idx(data_dir / "train-labels-idx1-ubyte.gz", 8)
    x = read_idx(data_dir / "train-images-idx3-ubyte.gz", 16).reshape(len(y), 28, 28) / 255.0
    model = keras.Sequential(
        [
            keras.Input((28, 28)),
            keras.layers.Flatten(),
            *article_hidden_layers(variant),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        loss="sparse_categorical_crossentropy",
        optimizer=keras.optimizers.SGD(learning_rate=1e-3),
        metrics=["accuracy"],
    )
    started = time.perf_counter()
    history = model.fit(x, y, epochs=epochs, validation_split=0.1, verbose=0)
    val = history.history["val_accuracy"]
    return {
        "variant": variant,
        "seed": seed,
        "val_accuracy_best": max(val),
        "val_accuracy_last": val[-1],
        "val_accuracy_by_epoch": val,
        "fit_s": time.perf_counter() - started,
        "median_epoch_s": (time.perf_counter() - started) / epochs,
    }


# -- summary ---------------------------------------------------------------------------------


def pct(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 2)


def summarize(variant: str, runs: list[dict[str, Any]], note: bool = True) -> dict[str, Any]:
    """Medians and spreads of one variant's repetitions beside the published numbers."""
    done = [r for r in runs if r["variant"] == variant and r.get("val_accuracy_best") is not None]
    published = PUBLISHED[variant]
    if not done:
        return {"published": published, "runs": 0}
    best = [100 * r["val_accuracy_best"] for r in done]
    last = [100 * r["val_accuracy_last"] for r in done]
    fit = [r["fit_s"] for r in done]
    median_best = statistics.median(best)
    return {
        "published": published,
        "runs": len(done),
        "median_val_accuracy_best_pct": round(median_best, 2),
        "min_max_val_accuracy_best_pct": [round(min(best), 2), round(max(best), 2)],
        "median_val_accuracy_last_pct": round(statistics.median(last), 2),
        "min_max_val_accuracy_last_pct": [round(min(last), 2), round(max(last), 2)],
        "difference_points": round(median_best - published["val_accuracy_pct"], 2),
        "within_target": abs(median_best - published["val_accuracy_pct"]) <= TARGET_POINTS,
        "median_fit_s": round(statistics.median(fit), 1),
        "min_max_fit_s": [round(min(fit), 1), round(max(fit), 1)],
        "median_epoch_s": round(statistics.median(r["median_epoch_s"] for r in done), 2),
        **({"note": VARIANTS[variant]["note"]} if note else {}),
    }


def print_table(summary: dict[str, dict[str, Any]]) -> None:
    print(f"{'variant':<22} {'published':>9} {'ours best':>9} {'ours last':>9} {'fit s':>7}")
    for variant, row in summary.items():
        published = row["published"]["val_accuracy_pct"]
        if not row["runs"]:
            print(f"{variant:<22} {published:>9.2f} {'(no run)':>9}")
            continue
        print(
            f"{variant:<22} {published:>9.2f} {row['median_val_accuracy_best_pct']:>9.2f} "
            f"{row['median_val_accuracy_last_pct']:>9.2f} {row['median_fit_s']:>7.1f}"
        )


def parse_args() -> argparse.Namespace:
    parser = arg_parser(__doc__)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--repeats", type=int, default=1, help="seeds per variant")
    parser.add_argument("--epochs", type=int, default=20, help="fewer for a smoke run")
    parser.add_argument("--max-rows", type=int, default=None, help="dataset.max_rows (smoke)")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    parser.add_argument(
        "--preprocessing",
        choices=["article", "service"],
        default="article",
        help="the article's (rescale 1/255, last 10%% as validation, BN before each Dense) "
        "or the service's defaults",
    )
    parser.add_argument(
        "--article-code", action="store_true", help="bare Keras, the article's code (no service)"
    )
    return parser.parse_args()


def main_article_code(args: argparse.Namespace) -> None:
    """``--article-code``: the variants with the article's own code, in this process."""
    data_dir = args.data_dir.resolve()
    with tempfile.TemporaryDirectory(prefix="hpsearch-bench-") as tmp:
        checksums = seed_keras_cache(data_dir, Path(tmp))  # checks the files
    runs = []
    for repeat in range(args.repeats):
        shift = repeat % len(args.variants)
        for variant in args.variants[shift:] + args.variants[:shift]:
            run = article_code(variant, data_dir, BASE_SEED + repeat, args.epochs)
            run["repeat"] = repeat
            print({k: v for k, v in run.items() if k != "val_accuracy_by_epoch"}, flush=True)
            runs.append(run)
    summary = {v: summarize(v, runs, note=False) for v in args.variants}
    print_table(summary)
    path = write_result(
        "fashion_table_article_code",
        {
            "benchmark": "Fashion-MNIST 300-100-50-50-50, SGD 1e-3: the article's own code in "
            "bare Keras (pixels / 255, validation_split=0.1 = the last 6,000 rows), no service",
            "setup": "in-process, one TensorFlow thread (as a worker), batch 32",
            "epochs": args.epochs,
            "repeats": args.repeats,
            "seeds": [BASE_SEED + r for r in range(args.repeats)],
            "data_sha256": checksums,
            "summary": summary,
            "runs": runs,
        },
    )
    print(f"written to {path}")


def main() -> None:
    args = parse_args()
    if args.article_code:
        main_article_code(args)
        return
    full = args.epochs == 20 and args.max_rows is None
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hpsearch-bench-") as tmp:
        root = Path(tmp)
        checksums = seed_keras_cache(args.data_dir.resolve(), root / "keras")
        env = {"HPSEARCH_DATA_DIR": str(root / "data"), "KERAS_HOME": str(root / "keras")}
        with running_service(env, workers=1, log_dir=root / "logs") as client:
            for repeat in range(args.repeats):
                shift = repeat % len(args.variants)
                for variant in args.variants[shift:] + args.variants[:shift]:
                    run = run_variant(
                        client,
                        variant,
                        BASE_SEED + repeat,
                        args.epochs,
                        args.max_rows,
                        args.preprocessing,
                    )
                    run["repeat"] = repeat
                    print(
                        {k: v for k, v in run.items() if k != "val_accuracy_by_epoch"}, flush=True
                    )
                    runs.append(run)
    article = args.preprocessing == "article"
    summary = {v: summarize(v, runs, note=not article) for v in args.variants}
    print_table(summary)
    name = "fashion_table" if article else "fashion_table_service_preprocessing"
    path = write_result(
        name if full else f"{name}_smoke",
        {
            "benchmark": "Fashion-MNIST 300-100-50-50-50, SGD 1e-3: the articles' variants "
            "through the service",
            "setup": "embedded defaults (SQLite + SQLAlchemy broker), one worker process, "
            "HPSEARCH_TF_THREADS default (1), batch 32, no early stopping",
            "preprocessing": (
                "article: model.input.rescale 1/255 without standardization, dataset.split "
                "last (Keras's validation_split), batch norm before_dense"
                if article
                else "service defaults: inputs standardized on the training split, a seeded "
                "stratified validation sample, batch norm on the input and after each hidden "
                "activation"
            ),
            "epochs": args.epochs,
            "max_rows": args.max_rows,
            "validation_split": 0.1,
            "repeats": args.repeats,
            "seeds": [BASE_SEED + r for r in range(args.repeats)],
            "data_sha256": checksums,
            "target_points": TARGET_POINTS,
            "summary": summary,
            "runs": runs,
        },
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
