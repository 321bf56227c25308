"""The first prediction after the API starts, with the prediction process pre-warmed at start
(``HPSEARCH_PREWARM_PREDICTOR=true``, the default) and without, on an idle machine and on one
whose two cores are kept busy by two spinning processes (as on a loaded host or CI machine).

One tiny digits job is trained once (embedded SQLite and broker) to store a model. Then, for
each repetition and in alternating order, the API alone is started on that database, waited for
until healthy, left ``--user-delay`` seconds (a user's first request comes a few seconds after a
deployment, not in the same millisecond), and timed on its first and second predictions of the
same rows. Nothing is asserted: the medians and spreads go to ``results/first_predict.json``.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from api.cli.demo import api_process, free_port, wait_until_healthy
from api.client import ApiClient
from bench.common import arg_parser, run_job, running_service, write_result

SPEC = {
    "name": "first-predict",
    "dataset": {"name": "digits", "max_rows": 300, "split_seed": 1},
    "model": {"depth": 2, "units": 16, "activation": "relu", "kernel_initializer": "auto"},
    "training": {"epochs": 2, "batch_size": 32},
    "search": {"algorithm": "random", "max_trials": 1, "seed": 1},
}
ROWS = [[float(i % 16) for i in range(64)]] * 4


def _spin() -> None:
    while True:
        pass


@contextmanager
def busy_cores(count: int) -> Iterator[None]:
    """``count`` processes spinning on a core each."""
    spinners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(count)]
    for spinner in spinners:
        spinner.start()
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.join()


def first_predictions(job_id: str, prewarm: bool, delay_s: float, log_dir: Path) -> dict:
    """Start the API alone, wait ``delay_s`` after it is healthy, time two predictions."""
    os.environ["HPSEARCH_PREWARM_PREDICTOR"] = "true" if prewarm else "false"
    with ExitStack() as stack:
        port = free_port()
        api = stack.enter_context(api_process(port, log_dir))
        client = stack.enter_context(ApiClient(f"http://127.0.0.1:{port}", timeout=300))
        started = time.perf_counter()
        wait_until_healthy(client, {"api": api}, log_dir, timeout=120)
        healthy_s = time.perf_counter() - started
        time.sleep(delay_s)
        timings = []
        for _ in range(2):
            sent = time.perf_counter()
            client.predict(job_id, ROWS)
            timings.append(time.perf_counter() - sent)
    return {"healthy_after_s": healthy_s, "first_s": timings[0], "second_s": timings[1]}


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--user-delay", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hpsearch-bench-") as tmp:
        root = Path(tmp)
        env = {"HPSEARCH_DATA_DIR": str(root / "data"), "HPSEARCH_AUTH_MODE": "open"}
        with running_service(env, workers=1, log_dir=root / "logs") as client:
            job, _ = run_job(client, SPEC, timeout=600)
        assert job["status"] == "succeeded", job
        os.environ.update(env)
        runs: list[dict[str, Any]] = []
        for load in ("idle", "2 busy cores"):
            for repetition in range(args.repetitions):
                order = [True, False] if repetition % 2 == 0 else [False, True]
                for prewarm in order:
                    with busy_cores(2 if load != "idle" else 0):
                        timing = first_predictions(job["id"], prewarm, args.user_delay, root)
                    runs.append({"load": load, "prewarm": prewarm, **timing})
                    print(runs[-1], flush=True)
    summary = {
        f"{load}, prewarm {'on' if prewarm else 'off'}": {
            key: _summary([r[key] for r in runs if (r["load"], r["prewarm"]) == (load, prewarm)])
            for key in ("first_s", "second_s", "healthy_after_s")
        }
        for load in ("idle", "2 busy cores")
        for prewarm in (True, False)
    }
    path = write_result(
        "first_predict",
        {"user_delay_s": args.user_delay, "repetitions": args.repetitions, "summary": summary,
         "runs": runs},
    )  # fmt: skip
    print(path)
    for name, figures in summary.items():
        print(f"{name}: first {figures['first_s']}, second {figures['second_s']}")


if __name__ == "__main__":
    main()
