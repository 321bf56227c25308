"""How long a client command takes as a whole process: ``hpsearch jobs``, ``hpsearch trials JOB``
and ``hpsearch status`` against a running API on the embedded defaults (one job stored), beside
``python -c pass`` (the interpreter's own start) on the same machine.

Each command runs ``--runs`` times, in rotation; the medians and spreads go to
``results/cli_startup.json``. Nothing is asserted.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import arg_parser, run_job, running_service, write_result
from bench.first_predict import SPEC


def _time(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = arg_parser(__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    hpsearch = str(Path(sys.executable).parent / "hpsearch")
    with tempfile.TemporaryDirectory(prefix="hpsearch-bench-") as tmp:
        env = {"HPSEARCH_DATA_DIR": str(Path(tmp) / "data"), "HPSEARCH_AUTH_MODE": "open"}
        with running_service(env, workers=1, log_dir=Path(tmp) / "logs") as client:
            job, _ = run_job(client, SPEC, timeout=600)
            os.environ.update(env)
            url = ["--url", client.base_url]
            commands = {
                "python -c pass": [sys.executable, "-c", "pass"],
                "hpsearch jobs": [hpsearch, "jobs", *url],
                "hpsearch trials JOB": [hpsearch, "trials", job["id"], *url],
                "hpsearch status": [hpsearch, "status"],
            }
            times: dict[str, list[float]] = {name: [] for name in commands}
            for _ in range(args.runs):
                for name, command in commands.items():
                    times[name].append(_time(command))
    summary = {
        name: {"median_s": statistics.median(t), "min_s": min(t), "max_s": max(t)}
        for name, t in times.items()
    }
    print(write_result("cli_startup", {"runs": args.runs, "summary": summary}))
    for name, figures in summary.items():
        print(f"{name}: {figures}")


if __name__ == "__main__":
    main()
