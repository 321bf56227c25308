"""The reaper: a daemon thread in each worker's MAIN process (never a pool child, never
TensorFlow) that repairs what crashes and lost messages leave behind, every
``reaper_interval_s``:

(a) running trials whose worker is lost go back to waiting and are sent again: a pool process of
    this worker that is gone (found at once), or a lease not renewed for ``stale_after_s`` (kill
    -9, out of memory, a lost machine, a frozen process). The attempt counts;
(b) waiting trials whose message was sent more than ``stale_after_s`` ago are sent again (the
    embedded SQLAlchemy broker has no redelivery: a message fetched by a process that died is
    invisible forever; a flushed Redis loses messages too);
(c) jobs that are not final but have no active trial and no dispatch for ``stale_after_s`` get
    a dispatch-job message again (a lost submission message, a dispatch that gave up);
(d) cancelled jobs are settled at once: waiting trials cancelled, the job ended if no trial of
    it runs (a running one stops at its next epoch and ends the job);
(e) jobs with results left unfolded into their search for ``reaper_interval_s`` get a
    dispatch-job message (a safety net: the worker holding the search folds them normally);
(f) the worker says it is alive (``workers.heartbeat_at``), idle or not.

A database outage is not a worker's death: a reaper whose pass failed for a database reason
writes, once the database is back, a ``database_recovered`` marker, and every reaper then leaves
stale leases alone for one lease period (live workers renew theirs meanwhile). The queries skip
rows another session holds (``SKIP LOCKED``), so a frozen holder of a job's lock stalls nothing.

Every re-send is harmless if it turns out to be a duplicate: trials are claimed by a
compare-and-set and dispatching is idempotent under the job lock.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from db.broker import DISPATCH_JOB_TASK, RUN_TRIAL_TASK, celery_config
from db.repositories import recovery, workers
from db.settings import get_settings
from db.transient import (
    DatabaseUnavailableError,
    is_transient,
    outages_met,
    retry_budget,
)
from db.values import utcnow

log = logging.getLogger(__name__)

#: seconds a reaper pass retries a transient database error before it gives up until the next.
REAPER_RETRY_BUDGET_S = 5.0


def main_process_name(pid: int | None = None) -> str:
    """``host:pid`` of this worker's main process: its row in ``workers``."""
    return f"{socket.gethostname()}:{pid or os.getpid()}"


def worker_prefix(pid: int | None = None) -> str:
    """The ``worker`` column prefix of the trials run by this worker's pool processes."""
    return f"{main_process_name(pid)}:"


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


def dead_pool_processes() -> dict[str, str]:
    """Worker names of running trials held by pool processes of THIS worker that are gone,
    with the cause of the loss."""
    dead = {}
    for name in recovery.running_workers(worker_prefix()):
        try:
            pid = int(name.rsplit(":", 1)[1])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not _alive(pid):
            dead[name] = f"its pool process {pid} on {socket.gethostname()} exited"
    return dead


@dataclass
class ReapReport:
    requeued: list[int] = field(default_factory=list)
    resent: list[int] = field(default_factory=list)
    dispatched: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    #: False while stale leases are left alone after a database outage.
    leases_checked: bool = True

    def __bool__(self) -> bool:
        return bool(self.requeued or self.resent or self.dispatched or self.cancelled)


def leases_trusted(stale_after_s: float) -> bool:
    """Whether a stale lease now means a lost worker: not within one lease period of the
    database's last recovery (a live worker may not have renewed its lease yet)."""
    recovered = recovery.database_recovered_at()
    return recovered is None or utcnow() - recovered > timedelta(seconds=stale_after_s)


def reap_once(send: Any, blinked: Callable[[], bool] = lambda: False) -> ReapReport:
    """One pass; ``send(task_name, arg)`` sends a message. ``blinked()`` says whether the
    database was away since the last pass, even briefly: then stale leases are left alone for
    one lease period, as after a failed pass."""
    stale = get_settings().stale_after_s
    report = ReapReport(leases_checked=leases_trusted(stale))
    report.cancelled = [j for j in recovery.cancelled_jobs() if recovery.settle_cancelled_job(j)]
    if blinked():
        # This pass's own queries retried through the outage and succeeded, so no pass failed;
        # live workers' heartbeats failed all along, and their leases look stale.
        recovery.note_database_recovered(utcnow())
        log.warning("reaper: the database blinked; leases get one period of grace")
        report.leases_checked = False
    report.requeued = recovery.requeue_lost_trials(
        stale, dead_pool_processes(), check_leases=report.leases_checked
    )
    report.resent = recovery.resend_waiting_trials(stale)
    report.dispatched = recovery.jobs_to_dispatch(stale)
    report.dispatched += [
        j
        for j in recovery.jobs_with_unfolded_results(get_settings().reaper_interval_s)
        if j not in report.dispatched
    ]
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
        #: a pass failed for a database reason, and no pass has succeeded since.
        self.database_away = False
        #: database outages this process had met when the last pass began.
        self._outages_met = outages_met()
        self.name, self.started_at = main_process_name(), utcnow()

    def _send(self, task: str, arg: Any) -> None:
        if self._client is None:
            from celery import Celery

            # A client of its own: the worker's consumer connection is not shared across threads.
            self._client = Celery("hpsearch-reaper", set_as_current=False)
            self._client.conf.update(celery_config(get_settings()))
        self._client.send_task(task, args=[arg])

    def pass_once(self) -> ReapReport | None:
        """One pass, keeping track of database outages; None if it failed."""
        met_before, self._outages_met = self._outages_met, outages_met()
        try:
            if self.database_away:
                recovery.note_database_recovered(utcnow())
                log.warning("reaper: the database is back; leases get one period of grace")
            self.database_away = False
            # the worker is alive, idle or not (``hpsearch status``)
            workers.note_alive(self.name, socket.gethostname(), os.getpid(), self.started_at)
            return reap_once(self._send, lambda: outages_met() != met_before)
        except Exception as error:  # the DB or the broker is down: try again next time
            if isinstance(error, DatabaseUnavailableError) or is_transient(error):
                self.database_away = True
            log.warning("reaper pass failed: %r", error)
            return None

    def _run(self) -> None:
        with retry_budget(min(REAPER_RETRY_BUDGET_S, self.interval_s)):
            while True:
                self.pass_once()
                if self._stop.wait(self.interval_s):
                    return

    def start(self) -> Reaper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
