"""The API's own view of a route's latency, read from its Prometheus histogram
(``hpsearch_http_request_duration_seconds``): what the server took, from the request reaching
the app to the response's last byte, without the load generator's own delays (it runs on the
same cores in these benchmarks)."""

from __future__ import annotations

from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

METRIC = "hpsearch_http_request_duration_seconds"
#: the status poll's route, as the histogram labels it
STATUS_ROUTE = "/api/v1/jobs/{job_id}"


def route_buckets(base_url: str, route: str, method: str = "GET") -> dict[float, float]:
    """The route's cumulative histogram now: upper bound (seconds) -> requests at most that."""
    text = httpx.get(f"{base_url}/metrics", timeout=30).text
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != METRIC:
            continue
        for sample in family.samples:
            labels = sample.labels
            if (
                sample.name == f"{METRIC}_bucket"
                and labels.get("route") == route
                and labels.get("method") == method
            ):
                buckets[float(labels["le"])] = buckets.get(float(labels["le"]), 0) + sample.value
    return buckets


def tail(before: dict[float, float], after: dict[float, float]) -> dict[str, Any]:
    """Between two readings: the requests answered, and how many took longer than each bucket
    bound (milliseconds) up to 1 s."""
    total = after.get(float("inf"), 0) - before.get(float("inf"), 0)
    over = {
        f"over_{round(bound * 1000)}_ms": int(total - (after[bound] - before.get(bound, 0)))
        for bound in sorted(after)
        if 0.005 <= bound <= 1.0
    }
    return {"requests": int(total), **over}
