"""Where the job page's data is built: in one spawned process beside the API
(``api.child_process``), not in the API's request threads.

A build reads the job's trials, draws its figures, computes importance, and encodes and gzips
the JSON (~45 ms of CPU at 300 trials, more on bigger jobs, with every running job's page built
again each time one of its trials ends). In the API's own process that work held the interpreter
lock while status polls' threads waited for it (each time a poll came back from its database
read or its socket): with 50 dashboard viewers of five running jobs, 1-2% of status polls took
over 50 ms on the server. In the child it runs on another core, and the API only receives the
built bytes.

The child sees the database as any other process does; an in-memory SQLite database exists only
in the API's process, so its pages are built there, in the request's thread, as they are when
``dashboard_build_process`` is off. If the child dies under a build, that page is built in the
API's thread and the next build spawns another child. Each app has its own builder
(``app.state.page_builder``), stopped with the app."""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from api.child_process import SpawnedChild
from api.dashboard import views
from api.dashboard.templating import templates
from api.errors import PageBuildTimeoutError
from api.services import transaction
from api.services.jobs import job_or_404
from db.engine import is_in_memory
from db.settings import Settings

log = logging.getLogger(__name__)

#: seconds a build may take beyond the database retry budget before its process is killed.
BUILD_TIMEOUT_S = 60.0

T = TypeVar("T")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def encode_job_page(
    settings: Settings, owner: str, job_id: str, version: str
) -> tuple[bytes, bytes]:
    """The job page's data labelled ``version`` (``views.build_job_payload`` plus its state as
    HTML) as JSON bytes, as is and gzipped."""

    def read(session: Session) -> dict[str, Any]:
        job = job_or_404(session, job_id, owner)
        return views.build_job_payload(session, job, version)

    payload = transaction(settings, "read a job's dashboard", read)
    state = templates.get_template("_job_state.html").render(state=payload["state"])
    payload["state_html"] = state
    encoded = json.dumps(payload, default=_json_default, separators=(",", ":")).encode()
    return encoded, gzip.compress(encoded, compresslevel=6, mtime=0)


def _child_init(settings: Settings) -> None:
    """The child logs as the API does (level and format)."""
    settings.apply_log_level()


class PageBuilder:
    """Runs one app's CPU-bound dashboard builds in one lazily spawned process. Builds queue
    there one after another (a job's version is built once for all its viewers)."""

    def __init__(self, settings: Settings) -> None:
        self.child = SpawnedChild(initializer=_child_init, initargs=(settings,))

    def run(self, settings: Settings, build: Callable[..., T], *args: Any) -> T:
        """``build(settings, *args)`` in the child (in this thread when the settings say so or
        for an in-memory database, and once more here when the child died under it; the next
        build spawns another); ``PageBuildTimeoutError`` (504) if it outlasts the database
        retry budget by ``BUILD_TIMEOUT_S`` (queued time included), the child then killed."""
        if not settings.dashboard_build_process or is_in_memory(settings.resolved_database_url()):
            return build(settings, *args)
        timeout_s = settings.api_db_retry_budget_s + BUILD_TIMEOUT_S
        try:
            return self.child.call(build, settings, *args, timeout_s=timeout_s)
        except FutureTimeout as exc:
            raise PageBuildTimeoutError(timeout_s) from exc
        except BrokenProcessPool:
            log.warning("the dashboard's page-building process died; building in the API")
            return build(settings, *args)

    def job_page(
        self, settings: Settings, owner: str, job_id: str, version: str
    ) -> tuple[bytes, bytes]:
        """``encode_job_page`` in the child."""
        return self.run(settings, encode_job_page, owner, job_id, version)

    def importance(self, settings: Settings, owner: str, job_id: str) -> dict[str, Any]:
        """``views.importance_payload`` in the child, whose importance cache the page builds
        share."""
        return self.run(settings, views.importance_payload, owner, job_id)

    def shutdown(self) -> None:
        """Stop the child (the app's shutdown)."""
        self.child.shutdown()
