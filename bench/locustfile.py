"""Locust users for ``bench/api_load.py``: clients that poll a job's status and its leaderboard.

    .venv/bin/locust -f bench/locustfile.py --headless -u 50 -r 50 -t 30s --host URL --csv PREFIX

Read from the environment (``bench/api_load.py`` sets them):

- ``HPSEARCH_BENCH_JOB_IDS``: comma-separated ids of the jobs to poll (each user keeps one);
- ``HPSEARCH_BENCH_THINK_S``: mean think time between a user's requests, in seconds, drawn
  uniformly in [0.5, 1.5] x that (default 1: a polling dashboard); 0 = none (saturation);
- ``HPSEARCH_API_KEY``: optional, sent as ``Authorization: Bearer <key>`` (keys mode).

Half of a user's requests are status polls, half leaderboard reads (20 rows), split between the
default sort (score, best first) and the slowest trials first (duration_s, descending).
"""

from __future__ import annotations

import os
import random

from locust import FastHttpUser, between, constant, task

JOB_IDS = [j for j in os.environ.get("HPSEARCH_BENCH_JOB_IDS", "").split(",") if j]
THINK_S = float(os.environ.get("HPSEARCH_BENCH_THINK_S", "1"))
API_KEY = os.environ.get("HPSEARCH_API_KEY") or None
HEADERS = {"Authorization": f"Bearer {API_KEY}"} if API_KEY else {}


class PollingClient(FastHttpUser):
    """One dashboard polling one job."""

    wait_time = between(0.5 * THINK_S, 1.5 * THINK_S) if THINK_S > 0 else constant(0)

    def on_start(self) -> None:
        if not JOB_IDS:
            raise RuntimeError("set HPSEARCH_BENCH_JOB_IDS to the ids of the jobs to poll")
        self.job_id = random.choice(JOB_IDS)

    @task(2)
    def job_status(self) -> None:
        self.client.get(f"/api/v1/jobs/{self.job_id}", headers=HEADERS, name="GET /jobs/{id}")

    @task(1)
    def leaderboard_by_score(self) -> None:
        self.client.get(
            f"/api/v1/jobs/{self.job_id}/trials?sort=score&limit=20",
            headers=HEADERS,
            name="GET /jobs/{id}/trials?sort=score",
        )

    @task(1)
    def leaderboard_by_duration(self) -> None:
        self.client.get(
            f"/api/v1/jobs/{self.job_id}/trials?sort=duration_s&order=desc&limit=20",
            headers=HEADERS,
            name="GET /jobs/{id}/trials?sort=duration_s",
        )
