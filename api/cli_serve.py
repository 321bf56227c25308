"""What ``hpsearch serve`` prepares around uvicorn."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def metrics_directory(workers: int) -> Iterator[str | None]:
    """Several API processes count requests in one place: prometheus_client's multiprocess
    mode, in a fresh directory of their own (removed when they end) unless one is given."""
    if workers < 2 or os.environ.get(MULTIPROC_ENV):
        yield os.environ.get(MULTIPROC_ENV)
        return
    directory = tempfile.mkdtemp(prefix="hpsearch-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    try:
        yield directory
    finally:
        del os.environ[MULTIPROC_ENV]
        shutil.rmtree(directory, ignore_errors=True)
