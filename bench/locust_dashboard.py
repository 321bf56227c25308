"""Locust users for ``bench/dashboard_viewers.py``: people watching running jobs in the browser
dashboard, beside ``bench/locustfile.py``'s clients polling status and leaderboards.

    .venv/bin/locust -f bench/locust_dashboard.py --headless -u 100 -r 10 -t 40s \\
        --host URL --csv PREFIX StatusPoller DashboardViewer

Run it from the repository root (the pollers are ``bench.locustfile``'s) and name the user
classes to run, as above: ``StatusPoller`` alone is the baseline. Read from the environment, as
``bench/locustfile.py`` does: ``HPSEARCH_BENCH_JOB_IDS`` (each user keeps one job),
``HPSEARCH_BENCH_THINK_S`` (the pollers' think time) and ``HPSEARCH_API_KEY``; and how many of
each to run (``-u`` must be their sum): ``HPSEARCH_BENCH_POLLERS`` and
``HPSEARCH_BENCH_VIEWERS`` (default 50 each).

``DashboardViewer`` does what the job page did in a browser before it followed its job by
server-sent events (and still does without them): it loads the page (``/jobs/{id}``, HTML, and
the page's own scripts and styles once), then the page's data (``/ui/data/jobs/{id}``), then asks
for the job's version (``/ui/data/jobs/{id}/version``) ``HPSEARCH_BENCH_VIEWER_POLL_S`` seconds
(default 1) after its last answer, as the page's timer does, and fetches the data again whenever
the version moved. ``HPSEARCH_BENCH_VIEWER_MODE=page`` adds what the page's script also fetches
with each new version: the best trials' curves (``/curves?trials=...``) and, when the count of
completed trials moved, the importance (``/importance``); ``data`` (the default) fetches the data
alone; ``version`` (a diagnostic) never fetches it again, only polls the version.
``StreamViewer`` follows the job as the page now does, by server-sent events (see its doc).
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from typing import Any
from urllib.parse import quote

import gevent
from locust import FastHttpUser, HttpUser, constant, task

from bench.locustfile import HEADERS, JOB_IDS, PollingClient

__all__ = ["DashboardViewer", "StatusPoller", "StreamViewer"]

#: the page's script asks for importance at most this often (dashboard.js IMPORTANCE_MS).
IMPORTANCE_S = 10.0
#: the page waits up to this long before fetching a new version (dashboard.js SPREAD_MS).
SPREAD_S = 0.3
POLL_S = float(os.environ.get("HPSEARCH_BENCH_VIEWER_POLL_S", "1"))
MODE = os.environ.get("HPSEARCH_BENCH_VIEWER_MODE", "data")
FULL_PAGE = MODE == "page"
#: a diagnostic: the versions only, never the data again (what the polls alone cost)
REFETCH = MODE != "version"
#: the page's own assets: ``<script src="/...">`` and ``<link ... href="/...">`` (same origin).
ASSET = re.compile(r"""<(?:script[^>]*\ssrc|link[^>]*\shref)=["'](/[^/"'#][^"'#]*)["']""")


class StatusPoller(PollingClient):
    """``bench/locustfile.py``'s polling client, ``HPSEARCH_BENCH_POLLERS`` of them."""

    fixed_count = int(os.environ.get("HPSEARCH_BENCH_POLLERS", "50"))


class DashboardViewer(FastHttpUser):
    """One browser tab on one running job's page, ``HPSEARCH_BENCH_VIEWERS`` of them."""

    fixed_count = int(os.environ.get("HPSEARCH_BENCH_VIEWERS", "50"))
    wait_time = constant(POLL_S)

    def on_start(self) -> None:
        if not JOB_IDS:
            raise RuntimeError("set HPSEARCH_BENCH_JOB_IDS to the ids of the jobs to watch")
        self.job_id = random.choice(JOB_IDS)
        self.version: str | None = None
        self.completed: int | None = None
        page = self.client.get(f"/jobs/{self.job_id}", headers=HEADERS, name="page /jobs/{id}")
        for path in sorted(set(ASSET.findall(page.text or ""))):
            self.client.get(path, headers=HEADERS, name="page assets")
        self.fetch_data()

    def fetch_data(self) -> None:
        """The page's data; keeps the version it carries (else the next poll sets it)."""
        with self.client.get(
            f"/ui/data/jobs/{self.job_id}",
            headers=HEADERS,
            name="GET /ui/data/jobs/{id}",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
                return
            payload = response.json()
            version = payload.get("version") if isinstance(payload, dict) else None
            self.version = str(version) if version is not None else self.version
        if FULL_PAGE and isinstance(payload, dict):
            self.fetch_page_extras(payload)

    def fetch_page_extras(self, payload: dict[str, Any]) -> None:
        """What the page's script fetches after drawing new data: the best trials' curves,
        and the importance when more trials completed."""
        best = [str(n) for n in payload.get("best", [])[:20]]
        if best:
            self.client.get(
                f"/ui/data/jobs/{self.job_id}/curves?trials={','.join(best)}",
                headers=HEADERS,
                name="GET /ui/data/jobs/{id}/curves",
            )
        completed = payload.get("state", {}).get("counts", {}).get("completed")
        if completed != self.completed:
            self.completed = completed
            self.client.get(
                f"/ui/data/jobs/{self.job_id}/importance",
                headers=HEADERS,
                name="GET /ui/data/jobs/{id}/importance",
            )

    @task
    def poll_version(self) -> None:
        with self.client.get(
            f"/ui/data/jobs/{self.job_id}/version",
            headers=HEADERS,
            name="GET /ui/data/jobs/{id}/version",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
                return
            version = str(response.json().get("version"))
        if version != self.version:
            self.version = version
            if REFETCH:
                self.fetch_data()


class StreamViewer(HttpUser):
    """One browser tab on one running job's page as the page follows it now: the page, its
    assets and data once, then the job's server-sent events (``/ui/data/jobs/{id}/stream``):
    at each ``version`` event whose version it has not got, the page's data (gzipped), then what
    the page's script fetches (``HPSEARCH_BENCH_VIEWER_MODE=stream``: the best trials' curves
    when the best trials changed; the importance only when the data comes without it, see
    ``extras``). When a stream ends (the server closes it every ~25 s) the viewer reconnects a
    second later, as the browser does. ``HPSEARCH_BENCH_VIEWERS`` of them.

    Each ``version`` event is counted as a request named ``SSE version event`` (its response
    time: since the stream was opened or the last event)."""

    fixed_count = int(os.environ.get("HPSEARCH_BENCH_VIEWERS", "50"))
    wait_time = constant(1.0)

    def on_start(self) -> None:
        if not JOB_IDS:
            raise RuntimeError("set HPSEARCH_BENCH_JOB_IDS to the ids of the jobs to watch")
        self.job_id = random.choice(JOB_IDS)
        self.completed: int | None = None
        page = self.client.get(f"/jobs/{self.job_id}", headers=HEADERS, name="page /jobs/{id}")
        for path in sorted(set(ASSET.findall(page.text or ""))):
            self.client.get(path, headers=HEADERS, name="page assets")
        self.version = ""
        self.fetch_data()

    def fetch_data(self, version: str | None = None) -> None:
        """The page's data (of ``version`` when told one; the browser asks for gzip, as
        requests does), and what follows it."""
        query = f"?v={quote(version)}" if version else ""
        data = self.client.get(
            f"/ui/data/jobs/{self.job_id}{query}", headers=HEADERS, name="GET /ui/data/jobs/{id}"
        )
        payload = data.json() if data.status_code == 200 else {}
        self.version = str(payload.get("version", self.version))
        self.extras(payload)

    def extras(self, payload: dict[str, Any]) -> None:
        """As the page's script: the best trials' curves when the best trials changed; the
        importance comes with the data, and only when it does not (a job too big to compute it
        with every page) is it asked for, when more trials completed, at most every
        ``IMPORTANCE_S``."""
        best = [str(n) for n in payload.get("best", [])[:20]]
        if best and best != getattr(self, "curves_of", None):
            self.curves_of = best
            self.client.get(
                f"/ui/data/jobs/{self.job_id}/curves?trials={','.join(best)}",
                headers=HEADERS,
                name="GET /ui/data/jobs/{id}/curves",
            )
        completed = payload.get("state", {}).get("counts", {}).get("completed")
        due = time.monotonic() - getattr(self, "importance_at", -IMPORTANCE_S) >= IMPORTANCE_S
        if payload.get("importance") is None and completed != self.completed and due:
            self.completed, self.importance_at = completed, time.monotonic()
            self.client.get(
                f"/ui/data/jobs/{self.job_id}/importance",
                headers=HEADERS,
                name="GET /ui/data/jobs/{id}/importance",
            )

    @task
    def follow(self) -> None:
        headers = {**HEADERS, "Accept": "text/event-stream", "Last-Event-ID": self.version}
        response = self.client.get(
            f"/ui/data/jobs/{self.job_id}/stream?since={quote(self.version)}",
            headers=headers,
            name="GET /ui/data/jobs/{id}/stream (headers)",
            stream=True,
        )
        if response.status_code != 200:
            return
        event, data, last = "message", [], time.perf_counter()
        try:
            for line in response.iter_lines(decode_unicode=True):
                if line:
                    field, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if field == "event":
                        event = value
                    elif field == "data":
                        data.append(value)
                    continue
                if event == "end":
                    return
                if event == "version" and data:
                    self.environment.events.request.fire(
                        request_type="SSE",
                        name="SSE version event",
                        response_time=1000 * (time.perf_counter() - last),
                        response_length=sum(map(len, data)),
                        exception=None,
                        context={},
                    )
                    # versions that came while the data was fetched are skipped, as the page
                    # fetches only the latest
                    told = json.loads("\n".join(data)).get("version")
                    if told != self.version:
                        gevent.sleep(random.uniform(0, SPREAD_S))  # as the page spreads them
                        self.fetch_data(told)
                    last = time.perf_counter()
                event, data = "message", []
        finally:
            response.close()
