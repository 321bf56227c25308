"""How soon a trial that ended shows on an open job page, without reloading.

Runs the service on the embedded defaults with one worker, opens a running job's page in
Debian's headless Chromium (``HPSEARCH_CHROMIUM`` or ``chromium`` on PATH) and notes, every
50 ms in the page, when each trial first appears in the optimization history; the trial's
``finished_at`` (the worker's clock: the same machine) gives the delay. optuna-dashboard's,
measured on this kind of machine: 5-7 s, up to 15-20 s with its server cache.

    .venv/bin/python -m bench.dashboard_live [--trials 30]
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from api.dashboard import live, stream
from bench.common import arg_parser, running_service, write_result
from bench.dashboard_screenshots import chromium_executable

SPEC: dict[str, Any] = {
    "name": "live-updates",
    "dataset": {"name": "iris"},
    "model": {
        "depth": {"type": "int", "min": 1, "max": 2},
        "units": {"type": "choice", "values": [8, 16]},
    },
    # a continuous range: the space is not exhausted before --trials
    "optimizer": {"learning_rate": {"type": "float", "min": 0.001, "max": 0.1, "sampling": "log"}},
    "training": {"epochs": 5, "batch_size": 16},
    "search": {"algorithm": "random", "seed": 1},
}
#: records, in the page, when each trial number first shows in the history plot
WATCH = """() => {
    window.firstSeen = {};
    setInterval(() => {
        const el = document.querySelector('#chart-history');
        const chart = el && window.echarts && echarts.getInstanceByDom(el);
        if (!chart) return;
        for (const [number] of chart.getOption().series[0].data) {
            if (!(number in window.firstSeen)) window.firstSeen[number] = Date.now();
        }
    }, 50);
}"""


def _delays(client: Any, job_id: str, seen: dict[str, int], watched_from: float) -> list[float]:
    """Seconds from each trial's end to its first sight, for trials that ended while watched."""
    delays = []
    for trial in client.trials(job_id, limit=100)["items"]:
        finished = trial["timings"].get("finished_at")
        if trial["status"] != "completed" or not finished or str(trial["number"]) not in seen:
            continue
        ended = datetime.fromisoformat(finished).timestamp()
        if ended > watched_from:
            delays.append(seen[str(trial["number"])] / 1000 - ended)
    return delays


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--trials", type=int, default=30)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="hpsearch-live-") as tmp:
        env = {"HPSEARCH_DATA_DIR": tmp, "HPSEARCH_PREWARM_PREDICTOR": "false"}
        with running_service(env, workers=1, log_dir=Path(tmp) / "logs") as client:
            spec = {**SPEC, "search": {**SPEC["search"], "max_trials": args.trials}}
            job_id = client.submit(spec)["id"]
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=chromium_executable(), args=["--no-sandbox", "--disable-gpu"]
                )
                page = browser.new_page()
                page.goto(f"{client.base_url}/jobs/{job_id}")
                page.wait_for_selector("#chart-history[data-points]")
                page.evaluate(WATCH)
                watched_from = time.time() + 0.1
                while client.job(job_id)["status"] not in ("succeeded", "failed", "cancelled"):
                    time.sleep(0.5)
                time.sleep(3)
                seen = page.evaluate("window.firstSeen")
                reloads = page.evaluate("performance.getEntriesByType('navigation').length")
                browser.close()
            delays = sorted(_delays(client, job_id, seen, watched_from))
    quantile = delays[int(0.9 * (len(delays) - 1))]
    result = {
        "trials_seen": len(delays),
        "follows_by": "server-sent events (one stream per page)",
        "version_checked_every_s": stream.CHECK_S,
        "version_cached_s": live.VERSION_TTL_S,
        "delay_s": {
            "median": round(statistics.median(delays), 3),
            "p90": round(quantile, 3),
            "max": round(max(delays), 3),
            "min": round(min(delays), 3),
        },
        "page_navigations": reloads,
        "peer": "optuna-dashboard 0.21, same kind of machine: 5-7 s, up to 15-20 s",
    }
    print(result)
    write_result("dashboard_live", result)


if __name__ == "__main__":
    main()
