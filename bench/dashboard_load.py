"""The service's dashboard beside optuna-dashboard, on the same trials, loaded in a headless
Chromium: time to the main plot, bytes over the wire, bytes of the data (JSON).

    .venv/bin/python -m bench.dashboard_load [--trials 100 1000] [--loads 3] [--seed 0]

The same simulated dense-net searches (``bench/dashboard_seed.py``: 6 hyperparameters, 20 epochs
of loss, accuracy, val_loss and val_accuracy per trial, ~3% failed and a few diverged trials, two
workers) are written into a fresh SQLite database of the service through its models (one
finished job per size) and into an Optuna study per size (SQLite RDB storage, intermediate values
= the 20 ``val_accuracy`` values). ``hpsearch serve`` (open auth mode, no worker) and
``optuna-dashboard`` (its default threaded wsgiref server) serve them on free ports; the
browser, both servers and this script share the machine's cores.

Each page is loaded once untimed (the servers' first-request costs), then ``--loads`` times in a
fresh browser context (empty cache), alternating which dashboard goes first
(``bench/page_load.py`` says what is measured and how):

- the service: ``/jobs/{id}``, drawn when ``#chart-history`` carries ``data-points``;
- optuna-dashboard: ``/dashboard/studies/{id}``, drawn when its history plot
  (``#plot-history``, plotly) holds its points (``.scatterlayer .point``).

Writes ``bench/results/dashboard_load.json`` (medians and min-max, every load, the machine's core
count, the versions of optuna, optuna-dashboard and Chromium) and prints a table. Needs the
``bench`` extra (optuna, optuna-dashboard) and a Chromium (``apt-get install -y chromium``).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

from api.cli.demo import free_port, stop_group
from bench.api_load import applied_env
from bench.common import arg_parser, running_service, write_result
from bench.dashboard_seed import EPOCHS, insert_hpsearch_job, insert_optuna_study, simulate
from bench.page_load import Plot, chromium_executable, load

RESULT = "dashboard_load"
HPSEARCH_PLOT = Plot("#chart-history[data-points]", count_attribute="data-points")
OPTUNA_PLOT = Plot("#plot-history .scatterlayer .point")
PLOTS = {"hpsearch": HPSEARCH_PLOT, "optuna-dashboard": OPTUNA_PLOT}
FIGURES = ("plot_ms", "wire_bytes", "json_bytes", "json_wire_bytes", "requests")


# -- seeding and serving ---------------------------------------------------------------------


def seed(root: Path, sizes: list[int], seed_value: int) -> dict[str, Any]:
    """Both databases: the service's (one finished job per size) and Optuna's (one study per
    size), the same trials in each."""
    from db.migrate import upgrade

    hpsearch_url = f"sqlite:///{root / 'hpsearch.db'}"
    optuna_url = f"sqlite:///{root / 'optuna.db'}"
    out: dict[str, Any] = {"hpsearch_url": hpsearch_url, "optuna_url": optuna_url, "sizes": {}}
    with applied_env(service_env(root, hpsearch_url)):
        upgrade(hpsearch_url)
        for size in sizes:
            trials = simulate(size, seed=seed_value + size)
            started = time.perf_counter()
            job_id = insert_hpsearch_job(hpsearch_url, trials)
            hpsearch_s = time.perf_counter() - started
            study_id = insert_optuna_study(optuna_url, f"dense-net-{size}", trials)
            statuses = [t.status for t in trials]
            out["sizes"][size] = {
                "job_id": job_id,
                "study_id": study_id,
                "trials": {s: statuses.count(s) for s in sorted(set(statuses))},
                "epoch_rows": sum(len(t.curve) for t in trials),
                "seed_s": {
                    "hpsearch": round(hpsearch_s, 1),
                    "optuna": round(time.perf_counter() - started - hpsearch_s, 1),
                },
            }
            print(f"seeded {size} trials: {out['sizes'][size]}", flush=True)
    return out


def service_env(root: Path, database_url: str) -> dict[str, str]:
    """The service's environment: the seeded database, open auth mode, data under ``root``."""
    return {
        "HPSEARCH_DATABASE_URL": database_url,
        "HPSEARCH_DATA_DIR": str(root / "data"),
        "HPSEARCH_AUTH_MODE": "open",
        "HPSEARCH_LOG_LEVEL": "WARNING",
    }


def _optuna_dashboard_command() -> list[str]:
    script = Path(sys.executable).parent / "optuna-dashboard"
    found = str(script) if script.exists() else shutil.which("optuna-dashboard")
    if not found:
        raise RuntimeError("optuna-dashboard is not installed: pip install -e '.[bench]'")
    return [found]


@contextmanager
def optuna_dashboard(storage_url: str, log_dir: Path, timeout: float = 60) -> Iterator[str]:
    """``optuna-dashboard`` on a free port of 127.0.0.1; yields its base URL."""
    log_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [*_optuna_dashboard_command(), storage_url, "--host", "127.0.0.1"]
    with (log_dir / "optuna-dashboard.log").open("ab") as log:
        process = subprocess.Popen(
            [*command, "--port", str(port), "--quiet"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"optuna-dashboard exited; see {log_dir}")
            try:
                if httpx.get(f"{base}/api/meta", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"optuna-dashboard did not answer in {timeout:.0f}s")
            time.sleep(0.3)
        yield base
    finally:
        stop_group(process)


def pages_ready(base_url: str, job_id: str) -> dict[str, Any]:
    """Whether the service serves the dashboard: ``/jobs/{id}`` as HTML with the history
    chart, and the data's version."""
    page = httpx.get(f"{base_url}/jobs/{job_id}", timeout=30)
    version = httpx.get(f"{base_url}/ui/data/jobs/{job_id}/version", timeout=30)
    html = page.headers.get("content-type", "").startswith("text/html")
    return {
        "page": page.status_code == 200 and html and "chart-history" in page.text,
        "page_status": page.status_code,
        "version": version.status_code == 200 and "version" in version.json(),
        "version_status": version.status_code,
    }


def code_state() -> dict[str, Any]:
    """Which code was measured: the commit, and the service's files changed from it (the
    working tree is what the API ran)."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    changed = git("status", "--porcelain", "--", "api", "db", "search_spaces", "worker")
    return {"commit": git("rev-parse", "HEAD"), "service_files_changed": changed.splitlines()}


# -- measuring -------------------------------------------------------------------------------


def measure(
    browser: Any, targets: dict[str, dict[int, str]], sizes: list[int], loads: int
) -> list[dict[str, Any]]:
    """Every load: one untimed warm-up per page, then ``loads`` per page and size, the order of
    the dashboards alternating."""
    runs = []
    names = list(targets)
    for repetition in range(-1, loads):
        for size in sizes:
            order = names if repetition % 2 == 0 else names[::-1]
            for name in order:
                load_average = round(os.getloadavg()[0], 2)  # other work on the machine
                result = load(browser, targets[name][size], PLOTS[name])
                result.update(dashboard=name, trials=size, repetition=repetition)
                result["load_average_1min_before"] = load_average
                if repetition < 0:
                    result["warm_up"] = True
                runs.append(result)
                print(
                    f"{name:<17} {size:>5} trials  load {repetition:>2}: "
                    f"plot {result['plot_ms']:>8.0f} ms  points {result['points']:>5}  "
                    f"wire {result['wire_bytes'] / 1e6:6.2f} MB  "
                    f"JSON {result['json_bytes'] / 1e6:6.3f} MB",
                    flush=True,
                )
    return runs


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per dashboard and size: median and min-max of each figure over the timed loads, and the
    ratios of the service's medians to optuna-dashboard's."""
    summary: dict[str, Any] = {}
    for run in runs:
        if run.get("warm_up"):
            continue
        summary.setdefault(str(run["trials"]), {}).setdefault(run["dashboard"], []).append(run)
    for dashboards in summary.values():
        for name, samples in list(dashboards.items()):
            dashboards[name] = {
                figure: {
                    "median": statistics.median(s[figure] for s in samples),
                    "min_max": [min(s[figure] for s in samples), max(s[figure] for s in samples)],
                }
                for figure in FIGURES
            } | {"points": sorted({s["points"] for s in samples}), "loads": len(samples)}
        if {"hpsearch", "optuna-dashboard"} <= dashboards.keys():
            ours, theirs = dashboards["hpsearch"], dashboards["optuna-dashboard"]
            dashboards["ratio_hpsearch_to_optuna"] = {
                figure: round(ours[figure]["median"] / theirs[figure]["median"], 3)
                for figure in ("plot_ms", "wire_bytes", "json_bytes")
                if theirs[figure]["median"]
            }
    return summary


def print_table(summary: dict[str, Any]) -> None:
    print(f"\n{'trials':>6}  {'dashboard':<17} {'plot drawn, s':>22}  {'wire MB':>18}  JSON MB")
    for size, dashboards in summary.items():
        for name in ("hpsearch", "optuna-dashboard"):
            row = dashboards.get(name)
            if row is None:
                continue
            plot, wire, data = row["plot_ms"], row["wire_bytes"], row["json_bytes"]
            print(
                f"{size:>6}  {name:<17} {plot['median'] / 1000:6.2f} "
                f"({plot['min_max'][0] / 1000:.2f}-{plot['min_max'][1] / 1000:.2f})"
                f"  {wire['median'] / 1e6:7.3f} ({wire['min_max'][0] / 1e6:.3f}-"
                f"{wire['min_max'][1] / 1e6:.3f})  {data['median'] / 1e6:.3f}"
            )
        if "ratio_hpsearch_to_optuna" in dashboards:
            print(
                f"{size:>6}  ratio hpsearch / optuna-dashboard: {dashboards['ratio_hpsearch_to_optuna']}"
            )


def _versions(browser_version: str) -> dict[str, str]:
    versions = {"chromium": browser_version}
    for name in ("optuna", "optuna-dashboard", "playwright", "fastapi", "uvicorn"):
        versions[name] = metadata.version(name)
    return versions


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--trials", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--loads", type=int, default=3, help="timed loads per page and size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--dashboards", nargs="+", choices=list(PLOTS), default=list(PLOTS), help="which to load"
    )
    parser.add_argument("--result", default=RESULT, help="result file name (no .json)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="hpsearch-bench-") as tmp, ExitStack() as stack:
        root = Path(tmp)
        code = code_state()
        seeded = seed(root, args.trials, args.seed)
        sizes = seeded["sizes"]
        env = service_env(root, seeded["hpsearch_url"])
        targets: dict[str, dict[int, str]] = {}
        if "hpsearch" in args.dashboards:
            client = stack.enter_context(running_service(env, 0, root / "logs"))
            ready = pages_ready(client.base_url, sizes[args.trials[0]]["job_id"])
            if not (ready["page"] and ready["version"]):
                raise SystemExit(f"the service does not serve its dashboard yet: {ready}")
            targets["hpsearch"] = {
                n: f"{client.base_url}/jobs/{sizes[n]['job_id']}" for n in args.trials
            }
        if "optuna-dashboard" in args.dashboards:
            base = stack.enter_context(optuna_dashboard(seeded["optuna_url"], root / "logs"))
            targets["optuna-dashboard"] = {
                n: f"{base}/dashboard/studies/{sizes[n]['study_id']}" for n in args.trials
            }
        playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(
            executable_path=chromium_executable(), args=["--no-sandbox", "--disable-gpu"]
        )
        stack.callback(browser.close)
        versions = _versions(browser.version)
        runs = measure(browser, targets, args.trials, args.loads)
    summary = summarize(runs)
    print_table(summary)
    path = write_result(
        args.result,
        {
            "benchmark": "dashboard page load: the service's job page vs optuna-dashboard's "
            "study page, same trials, headless Chromium, fresh context per load",
            "cpu_count": os.cpu_count(),
            "code": code,
            "dashboard_versions": versions,
            "optuna_dashboard_server": "wsgiref (threaded; its default without gunicorn)",
            "loads": args.loads,
            "warm_up_loads": 1,
            "epochs_per_trial": EPOCHS,
            "seeding": {
                str(n): {k: v for k, v in s.items() if k not in ("job_id", "study_id")}
                for n, s in sizes.items()
            },
            "drawn_when": {
                name: f"the first animation frame in which '{plot.selector}' matches"
                for name, plot in PLOTS.items()
            },
            "summary": summary,
            "runs": runs,
        },
    )
    print(f"written to {path}")


if __name__ == "__main__":
    main()
