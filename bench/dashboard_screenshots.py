"""The dashboard's screenshots in docs/ (shown in the README), taken of real searches.

Not a benchmark: it runs the service on the embedded defaults with two workers, uploads
scikit-learn's breast-cancer table (bundled, offline), runs a random and a Bayesian search on it
(small dense nets, a few minutes on 2 cores), and photographs each page in Debian's headless
Chromium (``HPSEARCH_CHROMIUM`` or the first ``chromium`` on PATH) with Playwright.

    .venv/bin/python -m bench.dashboard_screenshots [--out docs]
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import arg_parser, run_job, running_service

SPACE: dict[str, Any] = {
    "model": {
        "depth": {"type": "int", "min": 1, "max": 3},
        "units": {"type": "choice", "values": [16, 32, 64]},
        "activation": {"type": "choice", "values": ["relu", "tanh", "selu"]},
        "dropout": {"type": "float", "min": 0.0, "max": 0.4},
        "kernel_initializer": "auto",
    },
    "optimizer": {
        "name": {"type": "choice", "values": ["adam", "rmsprop", "sgd"]},
        "learning_rate": {"type": "float", "min": 0.0001, "max": 0.1, "sampling": "log"},
    },
    "training": {"epochs": 12, "batch_size": 32, "early_stopping": {"patience": 4}},
}
VIEWPORT = {"width": 1400, "height": 900}


def _breast_cancer_csv(directory: Path) -> Path:
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    path = directory / "breast_cancer.csv"
    frame.to_csv(path, index=False)
    return path


def chromium_executable() -> str:
    """Debian's Chromium (``HPSEARCH_CHROMIUM`` or ``chromium`` on PATH)."""
    found = os.environ.get("HPSEARCH_CHROMIUM") or shutil.which("chromium")
    if not found:
        raise SystemExit("no chromium executable (apt-get install -y chromium)")
    return found


def photograph(base: str, pages: dict[str, str], out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_executable(), args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport=VIEWPORT)
        for name, path in pages.items():
            page.goto(base + path)
            page.wait_for_load_state("networkidle")
            # every lazily drawn plot (the slices) drawn before the picture
            page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
            page.wait_for_timeout(800)
            page.evaluate("window.scrollTo(0, 0)")
            page.wait_for_timeout(300)
            page.screenshot(path=str(out / f"dashboard-{name}.png"), full_page=True)
            print(f"{out / f'dashboard-{name}.png'}: {base}{path}")
        browser.close()


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--trials", type=int, default=40)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hpsearch-shots-") as tmp:
        env = {
            "HPSEARCH_DATA_DIR": tmp,
            "HPSEARCH_AUTH_MODE": "open",
            "HPSEARCH_PREWARM_PREDICTOR": "false",
        }
        with running_service(env, workers=2, log_dir=Path(tmp) / "logs") as client:
            upload = client.upload_dataset(_breast_cancer_csv(Path(tmp)), target="target")
            dataset = {"name": upload["ref"], "validation_split": 0.25}
            search = {"max_trials": args.trials, "seed": 7, "top_k": 3}
            jobs = {}
            for algorithm, trials in (("random", args.trials), ("bayesian", args.trials // 2)):
                spec = {
                    **SPACE,
                    "name": f"breast-cancer {algorithm}",
                    "dataset": dataset,
                    "search": {**search, "algorithm": algorithm, "max_trials": trials},
                }
                jobs[algorithm], took = run_job(client, spec)
                print(f"{algorithm} search: {jobs[algorithm]['status']} in {took:.0f} s")
            random_job, bayesian_job = jobs["random"], jobs["bayesian"]
            time.sleep(1)
            job_id = random_job["id"]
            photograph(
                client.base_url,
                {
                    "jobs": "/",
                    "job": f"/jobs/{job_id}",
                    "trial": f"/jobs/{job_id}/trials/{random_job['best_trial_number']}",
                    "compare": f"/compare?jobs={job_id}&jobs={bayesian_job['id']}",
                    "dataset": f"/datasets/{upload['id']}",
                },
                args.out,
            )


if __name__ == "__main__":
    main()
