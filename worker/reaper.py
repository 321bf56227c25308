"""The reaper: a daemon thread in each worker's MAIN process (never a pool child, never
TensorFlow) that repairs what crashes and lost messages leave behind, every
``reaper_interval_s``:

(a) RUNNING trials whose heartbeat is older than ``stale_after_s`` (their worker died: kill -9,
    out of memory, a lost machine), or whose pool process is one of ours and gone, go back to
    WAITING and their run-trial message is sent again;
(b) WAITING trials whose message was sent more than ``stale_after_s`` ago are sent again (the
    embedded SQLAlchemy broker has no redelivery: a message fetched by a process that died is
    invisible forever; a flushed Redis loses messages too);
(c) jobs that are not final but have no active trial and no dispatch for ``stale_after_s`` get
    a dispatch-job message again (a lost submission message);
(d) cancelled jobs are settled at once: waiting trials cancelled, the job ended if no trial of
    it runs (a running one stops at its next epoch and ends the job).

Every re-send is harmless if it turns out to be a duplicate: trials are claimed by a
compare-and-set and dispatching is idempotent under the job lock.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from db.broker import DISPATCH_JOB_TASK, RUN_TRIAL_TASK, celery_config
from db.engine import session_scope
from db.models import Trial, TrialStatus
from db.settings import get_settings
from worker.tuning import recorder

log = logging.getLogger(__name__)


def worker_prefix(pid: int | None = None) -> str:
    """The ``worker`` column prefix of the trials run by this worker's pool processes."""
    return f"{socket.gethostname()}:{pid or os.getpid()}:"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (dead, not yet reaped by the pool) is dead
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def dead_pool_processes() -> set[str]:
    """Worker names of RUNNING trials held by pool processes of THIS worker that are gone."""
    prefix = worker_prefix()
    with session_scope() as session:
        names = session.scalars(
            select(Trial.worker).where(
                Trial.status == TrialStatus.RUNNING, Trial.worker.startswith(prefix)
            )
        ).all()
    dead = set()
    for name in names:
        try:
            pid = int(str(name).rsplit(":", 1)[1])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not _alive(pid):
            dead.add(str(name))
    return dead


@dataclass
class ReapReport:
    requeued: list[int] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)
    dispatched: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.requeued or self.resent or self.dispatched or self.cancelled)


def reap_once(send: Any) -> ReapReport:
    """One pass; ``send(task_name, arg)`` sends a message."""
    stale = get_settings().stale_after_s
    report = ReapReport()
    report.cancelled = recorder.settle_cancelled_jobs()
    report.requeued = recorder.requeue_abandoned_trials(stale, dead_pool_processes())
    report.resent = recorder.resend_waiting_trials(stale)
    report.dispatched = recorder.jobs_to_dispatch(stale)
    for trial_id in [*report.requeued, *report.resent]:
        send(RUN_TRIAL_TASK, trial_id)
    for job_id in report.dispatched:
        send(DISPATCH_JOB_TASK, job_id)
    if report:
        log.warning(
            "reaper: requeued trials %s, re-sent trials %s, re-dispatched jobs %s, "
            "ended cancelled jobs %s",
            report.requeued,
            report.resent,
            report.dispatched,
            report.cancelled,
        )
    return report


class Reaper:
    """The daemon thread; ``stop()`` ends it (a worker's shutdown)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hpsearch-reaper", daemon=True)
        self._client: Any = None

    def _send(self, task: str, arg: Any) -> None:
        if self._client is None:
            from celery import Celery

            # A client of its own: the worker's consumer connection is not shared across threads.
            self._client = Celery("hpsearch-reaper", set_as_current=False)
            self._client.conf.update(celery_config(get_settings()))
        self._client.send_task(task, args=[arg])

    def _run(self) -> None:
        while True:
            try:
                reap_once(self._send)
            except Exception:  # the DB or the broker is down: try again next time
                log.warning("reaper pass failed", exc_info=True)
            if self._stop.wait(self.interval_s):
                return

    def start(self) -> Reaper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
