"""A running trial's lease: the heartbeat that keeps it, and the hand-back that returns it.

A heartbeat thread renews the lease every ``heartbeat_interval_s``; a worker that dies stops
beating and the reaper takes the trial back. A beat that fails because the database is away is
simply tried again at the next one; after an outage (not a lock timeout) the first that
succeeds notes that the database is back, and every reaper leaves leases alone for a lease
period. Handing a trial back (warm shutdown, or a database that stayed away past the retry
budget) does not count an attempt; if the database is still away, a daemon thread keeps trying
until it is back, so the trial never waits for the reaper to count it as lost.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

from db.repositories import recovery, trials
from db.repositories.trials import ClaimedTrial
from db.transient import BACKOFF_MAX_S, DatabaseUnavailableError, is_outage, retry_budget
from db.values import utcnow

log = logging.getLogger(__name__)


class Heartbeat:
    """A daemon thread that renews a trial's lease (``trials.heartbeat_at``) every interval."""

    def __init__(self, claim: ClaimedTrial, interval_s: float) -> None:
        self.claim, self.interval_s = claim, interval_s
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{claim.id}", daemon=True)

    def _run(self) -> None:
        failing = away = False
        while not self._stop.wait(self.interval_s):
            try:
                if not trials.heartbeat(self.claim.id, self.claim.lease):
                    self.lost = True
                    return
            except Exception as error:  # the database blinked: try again at the next beat
                if not failing:
                    log.warning("heartbeat of trial %s failed: %r", self.claim.id, error)
                failing = True
                # Only a database that was away says so to the reapers: a lock not granted in
                # time happens while it is up, and must not hide a lost worker's lease.
                away = away or is_outage(error)
                continue
            if failing:
                log.warning("heartbeat of trial %s renewed again", self.claim.id)
                failing = False
            if away:
                away = not _note_recovered()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _note_recovered() -> bool:
    """Tell every reaper the database just came back (its leases get one period of grace: the
    other trials' beats failed too); False if that failed, to be told at the next beat."""
    try:
        with retry_budget(0):
            recovery.note_database_recovered(utcnow())
    except Exception as error:
        log.warning("could not note that the database is back: %r", error)
        return False
    return True


_pending: queue.SimpleQueue[ClaimedTrial] = queue.SimpleQueue()
#: trials waiting to be handed back, the one being tried included.
_waiting = 0
_handback_thread: threading.Thread | None = None
_handback_lock = threading.Lock()


def hand_back(claim: ClaimedTrial) -> list[int]:
    """Return a trial this worker holds to the queue without counting the attempt. Returns the
    trial's id, to be sent again, if that is done now; else ``[]`` (the lease was no longer
    ours, or the database is away and a background thread hands it back once it is back, then
    sends it)."""
    try:
        with retry_budget(0):  # one try now: the caller already waited for the database
            released = trials.release_trial(claim.id, claim.lease)
    except DatabaseUnavailableError:
        log.warning("trial %s: the database is away; handing it back once it returns", claim.id)
        global _waiting
        with _handback_lock:
            _waiting += 1
        _start_handback_thread()
        _pending.put(claim)
        return []
    return [claim.id] if released else []


def _start_handback_thread() -> None:
    global _handback_thread
    with _handback_lock:
        if _handback_thread is None or not _handback_thread.is_alive():
            _handback_thread = threading.Thread(
                target=_handback_loop, name="hpsearch-handback", daemon=True
            )
            _handback_thread.start()


def _handback_loop() -> None:
    global _waiting
    from worker import messages

    while True:
        claim = _pending.get()
        try:
            _hand_back_for_good(claim, messages.send_trials)
        finally:
            with _handback_lock:
                _waiting -= 1
        time.sleep(BACKOFF_MAX_S / 10)


def _hand_back_for_good(claim: ClaimedTrial, send: Any) -> None:
    """Release ``claim`` once the database answers (then send it), or give up if it is not
    ours any more."""
    while True:
        try:
            with retry_budget(60.0):
                released = trials.release_trial(claim.id, claim.lease)
        except DatabaseUnavailableError:
            continue
        except Exception:  # a bug: the reaper takes the trial back when its lease is stale
            log.exception("could not hand back trial %s", claim.id)
            return
        if released:
            log.warning("trial %s handed back to the queue after the outage", claim.id)
            send([claim.id])
        return


def pending_handbacks() -> int:
    """How many trials wait for the database to be handed back (tests, logs)."""
    return _waiting
