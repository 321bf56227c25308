"""One page load in a headless Chromium, timed and weighed: the browser benchmarks' instrument.

Each load runs in a fresh browser context (empty cache, no cookies). The time is taken in the
page: a ``requestAnimationFrame`` loop, installed before any of the page's own scripts, checks
every frame whether the plot is in the DOM (``selector`` matches at least ``min_count``
elements); the first frame in which it is gives ``plot_ms``, ``performance.now()`` since the
navigation started (the document's time origin). A frame callback runs just before that frame
is painted, so this is the first frame that shows the plot.

Bytes come from the Chrome DevTools Protocol's network events: ``encodedDataLength`` of
``Network.loadingFinished`` (what came over the wire: headers and the compressed body) and the
sum of ``Network.dataReceived``'s ``dataLength`` (the decoded body), per request. A load counts
every request until the network has been quiet for ``quiet_s`` after the plot (no request in
flight, none started or ended), at most ``settle_max_s``: what the page fetches to show itself,
lazy parts included, and the few polls of a live page that fall in that window (a page that
holds a stream open, a running job's, is cut at ``settle_max_s``).

Chromium: ``HPSEARCH_CHROMIUM`` or the first of chromium, chromium-browser, google-chrome on
PATH (Debian's ``chromium`` here), launched with ``--no-sandbox --disable-gpu``.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

#: what the page's own clock says when the plot is first in a frame (see the module's doc).
FRAME_PROBE = """
(() => {
  const selector = %(selector)s;
  const minCount = %(min_count)d;
  const attribute = %(attribute)s;
  const tick = () => {
    const found = document.querySelectorAll(selector);
    if (found.length >= minCount) {
      const timing = performance.getEntriesByType("navigation")[0] || {};
      window.__benchPlot = {
        plot_ms: performance.now(),
        count: attribute ? Number(found[0].getAttribute(attribute)) : found.length,
        response_end_ms: timing.responseEnd || null,
        dom_content_loaded_ms: timing.domContentLoadedEventEnd || null,
      };
      return;
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();
"""


def chromium_executable() -> str:
    """The Chromium to drive (``HPSEARCH_CHROMIUM`` or the first on PATH)."""
    names = ("chromium", "chromium-browser", "google-chrome")
    found = os.environ.get("HPSEARCH_CHROMIUM") or next(
        filter(None, map(shutil.which, names)), None
    )
    if not found:
        raise RuntimeError("no Chromium executable: apt-get install -y chromium")
    return found


@dataclass
class Plot:
    """Where a page's main plot is and when it counts as drawn."""

    selector: str
    #: the element count that says it is drawn (1: the selector matching is enough).
    min_count: int = 1
    #: read the drawn plot's point count from this attribute of the first match (else: count
    #: the matches).
    count_attribute: str | None = None


@dataclass
class _Request:
    url: str
    resource: str = ""
    mime: str = ""
    status: int = 0
    wire_bytes: int = 0
    body_bytes: int = 0
    done: bool = False
    #: the browser's monotonic clock (s) when it was sent and when it ended
    sent_at: float = 0.0
    ended_at: float = 0.0


@dataclass
class _Network:
    requests: dict[str, _Request] = field(default_factory=dict)
    last_activity: float = field(default_factory=time.monotonic)

    def sent(self, event: dict[str, Any]) -> None:
        request = _Request(event["request"]["url"], sent_at=float(event.get("timestamp", 0.0)))
        self.requests[event["requestId"]] = request
        self.last_activity = time.monotonic()

    def response(self, event: dict[str, Any]) -> None:
        request = self.requests.setdefault(event["requestId"], _Request(event["response"]["url"]))
        request.resource = event.get("type", "")
        request.mime = event["response"].get("mimeType", "")
        request.status = int(event["response"].get("status", 0))

    def data(self, event: dict[str, Any]) -> None:
        if event["requestId"] in self.requests:
            self.requests[event["requestId"]].body_bytes += int(event.get("dataLength", 0))

    def finished(self, event: dict[str, Any]) -> None:
        request = self.requests.get(event["requestId"])
        if request is not None:
            request.wire_bytes = int(event.get("encodedDataLength", 0))
            request.ended_at = float(event.get("timestamp", 0.0))
            request.done = True
        self.last_activity = time.monotonic()

    def failed(self, event: dict[str, Any]) -> None:
        request = self.requests.get(event["requestId"])
        if request is not None:
            request.done = True
        self.last_activity = time.monotonic()

    def quiet_for(self) -> float:
        """Seconds since the last request started or ended (0 while one is in flight)."""
        if any(not r.done for r in self.requests.values()):
            return 0.0
        return time.monotonic() - self.last_activity


def _is_json(request: _Request) -> bool:
    return "json" in request.mime


def load(
    browser: Any,
    url: str,
    plot: Plot,
    timeout_s: float = 180.0,
    quiet_s: float = 2.0,
    settle_max_s: float = 30.0,
    viewport: tuple[int, int] = (1400, 900),
) -> dict[str, Any]:
    """Load ``url`` once in a fresh context of ``browser`` (a Playwright Chromium); returns the
    time to the plot, the page's request count and its bytes (wire and decoded, all and JSON),
    and every request."""
    import json

    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    try:
        context.add_init_script(
            FRAME_PROBE
            % {
                "selector": json.dumps(plot.selector),
                "min_count": plot.min_count,
                "attribute": json.dumps(plot.count_attribute),
            }
        )
        page = context.new_page()
        network = _Network()
        cdp = context.new_cdp_session(page)
        cdp.on("Network.requestWillBeSent", network.sent)
        cdp.on("Network.responseReceived", network.response)
        cdp.on("Network.dataReceived", network.data)
        cdp.on("Network.loadingFinished", network.finished)
        cdp.on("Network.loadingFailed", network.failed)
        cdp.send("Network.enable")
        page.goto(url, wait_until="commit", timeout=timeout_s * 1000)
        page.wait_for_function("() => window.__benchPlot", timeout=timeout_s * 1000, polling=50)
        drawn: dict[str, Any] = page.evaluate("() => window.__benchPlot")
        wire_at_plot = sum(r.wire_bytes for r in network.requests.values())
        settle_until = time.monotonic() + settle_max_s
        while network.quiet_for() < quiet_s and time.monotonic() < settle_until:
            page.wait_for_timeout(50)
        requests = list(network.requests.values())
    finally:
        context.close()
    json_requests = [r for r in requests if _is_json(r)]
    origin = min((r.sent_at for r in requests if r.sent_at), default=0.0)
    return {
        "plot_ms": round(drawn["plot_ms"], 1),
        "points": drawn["count"],
        "response_end_ms": _rounded(drawn.get("response_end_ms")),
        "dom_content_loaded_ms": _rounded(drawn.get("dom_content_loaded_ms")),
        "requests": len(requests),
        "wire_bytes": sum(r.wire_bytes for r in requests),
        "wire_bytes_at_plot": wire_at_plot,
        "body_bytes": sum(r.body_bytes for r in requests),
        "json_requests": len(json_requests),
        "json_bytes": sum(r.body_bytes for r in json_requests),
        "json_wire_bytes": sum(r.wire_bytes for r in json_requests),
        "by_request": [
            {
                "url": r.url.split("://", 1)[-1].split("/", 1)[-1],
                "type": r.resource,
                "mime": r.mime,
                "status": r.status,
                "wire_bytes": r.wire_bytes,
                "body_bytes": r.body_bytes,
                # since the page's own request was sent (close to the navigation's start)
                "sent_ms": round(1000 * (r.sent_at - origin), 1) if r.sent_at else None,
                "ended_ms": round(1000 * (r.ended_at - origin), 1) if r.ended_at else None,
            }
            for r in requests
        ],
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
