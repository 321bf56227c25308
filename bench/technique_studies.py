"""Technique studies through the service: the articles' Fashion-MNIST table as one study, and a
regression study on California housing (initializers x activations).

    .venv/bin/python -m bench.technique_studies [--studies fashion housing] [--seeds 3]
        [--workers 2] [--data-dir ../shared/data] [--epochs 20] [--max-rows N]
        [--screenshots docs]

**fashion**: ``search_spaces/examples/fashion_mnist_study.json``, the seven variants of
``bench/fashion_table.py`` (the article's preprocessing: pixels / 255, the last 10% as
validation, batch norm before each hidden Dense), each a patch of the Keras-defaults spec, ``--seeds`` seeds each, submitted as one study (``study`` in the spec) to a
fresh service (embedded defaults, ``--workers`` worker processes of one TensorFlow thread).
Target (issue 16): each variant's mean within 1.5 points of the published accuracy.

**housing**: California housing (``cal_housing.data``, the StatLib file scikit-learn loads; target
in $100,000 as scikit-learn gives it), uploaded as CSV; a 3 x 64 net, Adam 1e-3, 30 epochs,
early stopping, inputs standardized; variants: glorot_uniform, he_normal and lecun_normal
initializers x relu, tanh and selu activations, against glorot_uniform + relu.

Writes ``bench/results/technique_studies.json``: each study's table as the API gives it
(``GET /jobs/{id}/study``), its Markdown (``hpsearch study --markdown``), the wall time, and for
fashion each variant beside the article.
"""

from __future__ import annotations

import csv
import tempfile
import time
from pathlib import Path
from typing import Any

from api.cli.study_view import markdown
from api.client import ApiClient
from bench.common import arg_parser, run_job, running_service, write_result
from bench.dashboard_screenshots import photograph
from bench.fashion_table import PUBLISHED, TARGET_POINTS, seed_keras_cache
from search_spaces.example_specs import example_spec

HOUSING_COLUMNS = ("longitude", "latitude", "housing_median_age", "total_rooms",
                   "total_bedrooms", "population", "households", "median_income",
                   "median_house_value")  # fmt: skip
INITIALIZERS = ("glorot_uniform", "he_normal", "lecun_normal")
ACTIVATIONS = ("relu", "tanh", "selu")


def fashion_study(seeds: int, epochs: int, max_rows: int | None) -> dict[str, Any]:
    """The shipped study of the article's table (``fashion_mnist_study.json``: the
    Keras-defaults spec with the article's preprocessing, each variant a patch of its model;
    each variant's network is ``bench/fashion_table.py``'s), with ``seeds``, ``epochs`` and
    ``max_rows``."""
    spec = example_spec("fashion_mnist_study.json")
    spec["study"]["seeds"] = seeds
    spec["training"]["epochs"] = epochs
    if max_rows is not None:
        spec["dataset"]["max_rows"] = max_rows
    return spec


def housing_csv(data_dir: Path, target: Path) -> Path:
    """``cal_housing.data`` with a header, the target in $100,000."""
    with (data_dir / "cal_housing.data").open() as f, target.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(HOUSING_COLUMNS)
        for row in csv.reader(f):
            values = [float(v) for v in row]
            values[-1] /= 100_000
            writer.writerow([f"{v:.6g}" for v in values])
    return target


def housing_study(dataset: str, seeds: int) -> dict[str, Any]:
    """Initializers x activations on a small regression net, against glorot_uniform + relu."""
    variants = {
        f"{init} + {act}": {"model": {"kernel_initializer": init, "activation": act}}
        for act in ACTIVATIONS
        for init in INITIALIZERS
    }
    return {
        "name": "study: California housing initializers x activations",
        "dataset": {"name": dataset, "validation_split": 0.2},
        "model": {"input": {"standardize": True}, "depth": 3, "units": 64},
        "optimizer": {"name": "adam", "learning_rate": 1e-3},
        "training": {"epochs": 30, "batch_size": 64, "early_stopping": {"patience": 5}},
        "study": {"variants": variants, "baseline": "glorot_uniform + relu", "seeds": seeds},
    }


def run_study(client: ApiClient, spec: dict[str, Any]) -> dict[str, Any]:
    """Submit the study, wait for it; its table, Markdown and wall time."""
    job, wall_s = run_job(client, spec, timeout=6 * 3600)
    study = client.job_study(job["id"])
    print(markdown(study), flush=True)
    return {"job_id": job["id"], "job_status": job["status"], "wall_s": round(wall_s, 1),
            "table": study, "markdown": markdown(study)}  # fmt: skip


def against_article(study: dict[str, Any]) -> dict[str, Any]:
    """Each variant's mean beside the published accuracy, in points."""
    found = {}
    for v in study["variants"]:
        mean = v["objective"]["mean"]
        published = PUBLISHED[v["name"]]["val_accuracy_pct"]
        ours = None if mean is None else round(mean * 100, 2)
        gap = None if ours is None else round(ours - published, 2)
        found[v["name"]] = {"published_pct": published, "mean_pct": ours,
                            "difference_points": gap,
                            "within_target": gap is not None and abs(gap) <= TARGET_POINTS}  # fmt: skip
    return found


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--studies", nargs="+", default=["fashion", "housing"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--max-rows", type=int, default=None)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--screenshots", type=Path, default=None, help="e.g. docs")
    args = parser.parse_args()
    data_dir = args.data_dir.resolve()
    work = Path(tempfile.mkdtemp(prefix="hpsearch-studies-"))
    checksums = seed_keras_cache(data_dir / "fashion_mnist", work / "keras")
    env = {"HPSEARCH_DATA_DIR": str(work / "data"), "KERAS_HOME": str(work / "keras")}
    results: dict[str, Any] = {}
    started = time.perf_counter()
    with running_service(env, workers=args.workers, log_dir=work / "logs") as client:
        if "fashion" in args.studies:
            spec = fashion_study(args.seeds, args.epochs, args.max_rows)
            results["fashion"] = run_study(client, spec)
            results["fashion"]["against_article"] = against_article(results["fashion"]["table"])
        if "housing" in args.studies:
            upload = housing_csv(data_dir / "california_housing", work / "housing.csv")
            ref = client.upload_dataset(upload, target="median_house_value", name="housing")
            results["housing"] = run_study(client, housing_study(ref["ref"], args.seeds))
        if args.screenshots is not None:  # the study's dashboard page, for the README
            shown = results.get("fashion") or results["housing"]
            photograph(client.base_url, {"study": f"/jobs/{shown['job_id']}"}, args.screenshots)
    write_result(
        "technique_studies" + ("_smoke" if args.max_rows or args.epochs < 20 else ""),
        {
            "benchmark": "technique studies through the service (study jobs)",
            "setup": f"embedded defaults, {args.workers} worker processes of one TensorFlow "
            "thread each",
            "seeds": args.seeds,
            "epochs_fashion": args.epochs,
            "max_rows": args.max_rows,
            "fashion_mnist_sha256": checksums,
            "target": f"fashion: each variant's mean within {TARGET_POINTS} points of the article",
            "seconds": round(time.perf_counter() - started, 1),
            "studies": results,
        },
    )


if __name__ == "__main__":
    main()
