"""A real headless Chromium for page tests: the system's (Debian's ``chromium``), driven by
Playwright, with every request off the service's own origin refused and recorded (a page that
needs the internet shows it here)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import REQUIRE_SERVICES


def chromium_path() -> str:
    """The Chromium executable (``HPSEARCH_CHROMIUM`` or the first on PATH); skips (fails under
    HPSEARCH_REQUIRE_SERVICES=1) without one."""
    found = os.environ.get("HPSEARCH_CHROMIUM") or next(
        filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None
    )
    if found:
        return found
    message = "no Chromium executable (apt-get install -y chromium)"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} and HPSEARCH_REQUIRE_SERVICES=1")
    pytest.skip(message)


@dataclass
class OfflinePage:
    """A page that may only reach ``origin``; ``refused`` lists what it tried to fetch else."""

    page: Any
    origin: str
    refused: list[str] = field(default_factory=list)


@contextmanager
def offline_page(origin: str) -> Iterator[OfflinePage]:
    """A fresh page of a headless Chromium that reaches ``origin`` only."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            offline = OfflinePage(page, origin)

            def only_origin(route: Any) -> None:
                url = route.request.url
                if url.startswith(origin) or url.startswith("data:") or url.startswith("blob:"):
                    route.continue_()
                else:
                    offline.refused.append(url)
                    route.abort()

            page.route("**/*", only_origin)
            yield offline
        finally:
            browser.close()
