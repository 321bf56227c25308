"""``GET /metrics``: the service in the Prometheus text format (prometheus_client).

Two kinds of figures:

- the API's own requests, counted as they happen by a middleware: by method, route template
  (never the raw path: bounded label values) and status, with their latency. Several uvicorn
  processes (``hpsearch serve --workers N``) share them through prometheus_client's multiprocess
  mode: ``hpsearch serve`` gives them a ``PROMETHEUS_MULTIPROC_DIR``;
- the service's state, read from the database at each scrape (``db.repositories.service_stats``):
  jobs and trials by status, trial and epoch durations, the workers' lease renewals, the oldest
  waiting trial. Any API process answers them the same.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.services import API_PREFIX, transaction
from db.repositories import service_stats
from db.settings import Settings
from db.transient import retry_budget
from db.values import utcnow

METRICS_PATH = "/metrics"
#: seconds: from a tiny model's trial to a long one's; an epoch's are the same scale / 10.
TRIAL_BUCKETS = (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
EPOCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

REQUESTS = Counter(
    "hpsearch_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "hpsearch_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
)


def _route(scope: Scope) -> str:
    """The route template that answered (``/api/v1/jobs/{job_id}``), never the raw path."""
    path = getattr(scope.get("route"), "path", None)
    if path is None:
        return "<unmatched>"
    # an included router's route knows its path below the prefix it was included with
    if scope.get("path", "").startswith(API_PREFIX) and not path.startswith(API_PREFIX):
        return API_PREFIX + path
    return path


class RequestMetricsMiddleware:
    """Counts and times every HTTP request (plain ASGI: no per-request wrapping of the
    request and response objects on the API's hot path). The router records the route that
    matched in the scope, read once the response has started."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception escaping the app: the server answers 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route, method = _route(scope), scope["method"]
            if route != METRICS_PATH:
                LATENCY.labels(method, route).observe(time.perf_counter() - started)
                REQUESTS.labels(method, route, str(status)).inc()


def install(app: FastAPI, settings: Settings) -> None:
    """Count every request and serve ``/metrics``."""
    app.add_middleware(RequestMetricsMiddleware)

    @app.get(METRICS_PATH, include_in_schema=False)
    def metrics() -> Response:
        """Every figure, in the Prometheus text format."""
        registry = CollectorRegistry()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            MultiProcessCollector(registry)
        else:
            for collector in (REQUESTS, LATENCY):
                registry.register(collector)
        registry.register(ServiceCollector(settings))
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def _histogram(name: str, doc: str, figures: service_stats.Histogram) -> Metric:
    family = HistogramMetricFamily(name, doc)
    buckets = [(str(bound), float(n)) for bound, n in figures.buckets]
    family.add_metric([], [*buckets, ("+Inf", float(figures.count))], float(figures.total))
    return family


class ServiceCollector(Collector):
    """The service's state, read from the database when Prometheus scrapes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        with retry_budget(1.0):
            try:
                state = transaction(self.settings, "read the service's figures", _read)
            except Exception:  # the database is away: say so, serve the request figures
                yield GaugeMetricFamily("hpsearch_database_up", "The database answers.", 0)
                return
        yield GaugeMetricFamily("hpsearch_database_up", "The database answers.", 1)
        jobs = GaugeMetricFamily("hpsearch_jobs", "Jobs by status.", labels=["status"])
        for status, n in state["jobs"].items():
            jobs.add_metric([status], n)
        yield jobs
        trials = GaugeMetricFamily(
            "hpsearch_trials",
            "Trials by status: waiting and running, and how the others ended.",
            labels=["status"],
        )
        for status, n in state["trials"].items():
            trials.add_metric([status], n)
        yield trials
        yield _histogram(
            "hpsearch_trial_duration_seconds", "Training time of ended trials.", state["trial_s"]
        )
        yield _histogram("hpsearch_epoch_duration_seconds", "Time of epochs.", state["epoch_s"])
        now = utcnow()
        beats = GaugeMetricFamily(
            "hpsearch_worker_heartbeat_age_seconds",
            "Seconds since each worker process running a trial renewed its lease.",
            labels=["worker"],
        )
        for worker, process in state["processes"].items():
            if process.last_beat is not None:
                beats.add_metric([worker], (now - process.last_beat).total_seconds())
        yield beats
        oldest = state["oldest_waiting"]
        yield GaugeMetricFamily(
            "hpsearch_oldest_waiting_trial_age_seconds",
            "Seconds the longest-waiting trial has been in the queue (0: none waits).",
            (now - oldest).total_seconds() if oldest else 0.0,
        )


def _read(session: Any) -> dict[str, Any]:
    return {
        "jobs": service_stats.job_counts(session),
        "trials": service_stats.trial_counts(session),
        "trial_s": service_stats.trial_durations(session, TRIAL_BUCKETS),
        "epoch_s": service_stats.epoch_durations(session, EPOCH_BUCKETS),
        "processes": service_stats.running_processes(session),
        "oldest_waiting": service_stats.oldest_waiting(session),
    }
