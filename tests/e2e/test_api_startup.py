"""What `hpsearch serve` offers from its start: /docs (Swagger UI) and /redoc render in a real
headless browser that cannot reach the internet (the service serves their scripts and styles
itself); the OpenAPI document is at /openapi.json (and, as before, under /api/v1); the
prediction process is already warm."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.browser import offline_page
from tests.e2e.service import Service, compose_command, session_processes

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """``hpsearch serve`` on SQLite, no worker."""
    tmp_path = tmp_path_factory.mktemp("docs")
    service = Service.for_urls(tmp_path, f"sqlite:///{tmp_path / 'hpsearch.db'}", None)
    service.env["HPSEARCH_PREWARM_PREDICTOR"] = "true"
    try:
        service.run_once("migrate", compose_command("migrate"))
        service.start_api()
        yield service
    finally:
        service.stop()


def test_the_openapi_document_is_at_the_root_and_under_the_prefix(api: Service) -> None:
    root = httpx.get(f"{api.base_url}/openapi.json", timeout=30)
    assert root.status_code == 200 and root.json()["info"]["title"] == "hpsearch"
    assert "/api/v1/jobs" in root.json()["paths"]
    assert httpx.get(f"{api.base_url}/api/v1/openapi.json", timeout=30).json() == root.json()


def test_swagger_ui_renders_offline(api: Service, tmp_path: Path) -> None:
    with offline_page(api.base_url) as browser:
        browser.page.goto(f"{api.base_url}/docs")
        browser.page.wait_for_selector(".swagger-ui .opblock", timeout=60_000)
        operations = browser.page.locator(".opblock").count()
        title = browser.page.locator(".swagger-ui .title").first.inner_text()
        browser.page.screenshot(path=str(tmp_path / "docs.png"), full_page=False)
    assert browser.refused == []
    assert "hpsearch" in title
    assert operations >= 15, operations


def test_redoc_renders_offline(api: Service, tmp_path: Path) -> None:
    with offline_page(api.base_url) as browser:
        browser.page.goto(f"{api.base_url}/redoc")
        browser.page.wait_for_selector(".api-content h2", timeout=60_000)
        sections = browser.page.locator(".api-content h2").count()
        text = browser.page.locator(".api-content").inner_text()
        browser.page.screenshot(path=str(tmp_path / "redoc.png"), full_page=False)
    # ReDoc's footer credit ("API docs by Redocly") points its logo at Redocly's CDN: a
    # decoration, the one outside request the page makes; it renders without it.
    assert [u for u in browser.refused if not u.startswith(REDOCLY_LOGO)] == []
    assert sections >= 15, sections
    assert "/api/v1/jobs" in text


def _loaded_tensorflow(pid: int) -> bool:
    try:
        return "tensorflow" in (Path(f"/proc/{pid}/maps")).read_text()
    except OSError:
        return False


def test_the_prediction_process_is_warmed_at_start(api: Service) -> None:
    """The first prediction must not pay the child's TensorFlow import: it starts with the API,
    before any request asks for it."""
    _wait_warm(api)


def test_ctrl_c_stops_it_without_a_traceback(api: Service) -> None:
    """A terminal's Ctrl-C reaches the whole process group, the prediction process included:
    everything stops, quietly. (Last in this module: it stops the API.)"""
    _wait_warm(api)
    proc = api.processes.pop("api")
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=60)
    time.sleep(1)
    log = (api.log_dir / "api.log").read_text()
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log[-3000:]
    assert proc.returncode == 0, log[-3000:]
    assert session_processes(proc.pid) == []


def _wait_warm(api: Service) -> None:
    session = api.processes["api"].pid
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        children = [
            int(line.split()[0]) for line in session_processes(session) if "spawn_main" in line
        ]
        if any(_loaded_tensorflow(pid) for pid in children):
            return
        time.sleep(1)
    raise AssertionError(f"no prediction process with TensorFlow loaded:\n{api.logs()}")
