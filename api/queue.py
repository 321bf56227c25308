"""The API's Celery *client*: sends the dispatch-job task by name, never imports the worker code.

Every broker call is bounded (few retries, short socket timeouts), so an unreachable broker
surfaces as ``BrokerUnavailableError`` (HTTP 503) within about ``broker_connect_timeout_s``.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from celery import Celery

from api.errors import BrokerUnavailableError
from db.broker import DISPATCH_JOB_TASK, celery_config
from db.settings import Settings

log = logging.getLogger(__name__)


def _retry_policy(timeout_s: float) -> dict[str, Any]:
    return {
        "max_retries": 1,
        "interval_start": 0,
        "interval_step": min(0.5, timeout_s / 4),
        "interval_max": min(0.5, timeout_s / 4),
    }


def client_config(settings: Settings) -> dict[str, Any]:
    """The shared Celery config, with the connection attempts of a client bounded."""
    config = celery_config(settings)
    timeout = settings.broker_connect_timeout_s
    options = dict(config.get("broker_transport_options") or {})
    options.update(_retry_policy(timeout))
    if config["broker_url"].startswith(("redis://", "rediss://")):
        options.update(
            socket_connect_timeout=timeout, socket_timeout=timeout, retry_on_timeout=False
        )
    config.update(
        broker_transport_options=options,
        broker_connection_timeout=timeout,
        broker_connection_retry=False,
        broker_connection_max_retries=1,
        broker_pool_limit=4,
    )
    return config


class JobQueue:
    """Sends jobs to the workers' queue and checks that the broker answers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.celery = Celery("hpsearch-api", set_as_current=False)
        self.celery.conf.update(client_config(settings))
        # Broker calls run on these threads so each one is bounded by a hard deadline.
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="hpsearch-broker")

    @property
    def timeout_s(self) -> float:
        return self.settings.broker_connect_timeout_s

    def _bounded(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        # kombu's retries are bounded too, but a half-open socket could still stall: the
        # deadline here is the guarantee that a client gets a 503, not a hang.
        future = self._pool.submit(fn, *args, **kwargs)
        try:
            return future.result(timeout=self.timeout_s * 2 + 1)
        except FutureTimeout as exc:
            raise BrokerUnavailableError(f"{what}: the broker did not answer in time") from exc
        except Exception as exc:
            log.warning("%s failed: %r", what, exc)
            raise BrokerUnavailableError(
                f"{what}: the broker is unreachable ({type(exc).__name__})"
            ) from exc

    def enqueue_job(self, job_id: str) -> None:
        """Send ``DISPATCH_JOB_TASK(job_id)`` (task id = job id); ``BrokerUnavailableError`` if not sent."""
        self._bounded(
            "enqueue",
            self.celery.send_task,
            DISPATCH_JOB_TASK,
            args=[job_id],
            task_id=job_id,
            queue=self.settings.queue_name,
            retry=True,
            retry_policy=_retry_policy(self.timeout_s),
        )

    def revoke(self, job_id: str) -> bool:
        """Best effort: ask the workers to drop the job's task. False if that failed."""
        try:
            self._bounded("revoke", self.celery.control.revoke, job_id)
        except BrokerUnavailableError:
            return False
        return True

    def _ping(self) -> None:
        with self.celery.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=self.timeout_s)
            # the embedded SQLAlchemy transport connects lazily: open a channel to prove it works.
            conn.default_channel  # noqa: B018

    def broker_reachable(self) -> tuple[bool, str]:
        """``(ok, reason)`` for /health."""
        try:
            self._bounded("broker check", self._ping)
        except BrokerUnavailableError as exc:
            return False, str(exc.detail)
        return True, "ok"

    def close(self) -> None:
        """Release broker connections and the helper threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        try:
            self.celery.close()
        except Exception:  # pragma: no cover
            log.debug("closing the Celery client failed", exc_info=True)
