"""Flower, as docker-compose runs it, watches the real Redis broker."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.service import Service, compose_command, free_port, with_option

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.timeout(120)]


def test_flower_from_compose_serves_its_health_check(tmp_path: Path, redis_url: str) -> None:
    port = free_port()
    command = with_option(compose_command("flower"), "--address", "127.0.0.1")
    command = with_option(command, "--port", str(port))
    service = Service.for_urls(tmp_path, database_url=None, broker_url=redis_url)
    service.start("flower", command)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthcheck", timeout=2)
                if response.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert service.processes["flower"].poll() is None, service.logs()
            assert time.monotonic() < deadline, service.logs()
            time.sleep(0.5)
        assert response.text.strip() == "OK"
    finally:
        service.stop()
