"""Holding a job's search through a long step: a live holder is never cut off, a frozen one is.

A search step holds the job's search (``jobs.try_lock_search``) in a transaction that sends the
server nothing while the algorithm computes, and the server cuts a transaction silent for
``search_step_timeout_s``: that is what frees a job whose holder froze (SIGSTOP, a swapped-out
VM). A step that is only slow must not be cut: a Keras Tuner Bayesian proposal's time varies
tenfold with the scores its Gaussian process fits (0.4 s to 18 s for one 8-trial search, alone
on 2 cores) and a busy machine multiplies it. Cut, its lock went to the next worker, which
started the same proposal while the first still computed, and a job could be cut forever.

So while a step holds the search a thread of the same process says ``SELECT 1`` on the step's
own connection every third of the bound (psycopg serialises the two threads' statements). A
frozen process freezes that thread too, and is cut as before. A step that runs past
``MAX_HOLD_FACTOR`` times the bound (a bug that loops) is no longer kept alive.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.orm import Session

from db.repositories.jobs import try_lock_search

log = logging.getLogger(__name__)

#: a step is kept alive for at most this many times ``search_step_timeout_s``.
MAX_HOLD_FACTOR = 16
#: how long the end of a step waits for a keep-alive statement in flight.
JOIN_TIMEOUT_S = 10.0


@contextmanager
def hold_search(session: Session, job_id: str, step_timeout_s: float) -> Iterator[bool]:
    """Inside: the job's search is this transaction's (True), or another session's (False).
    Statements of ``session`` must all run inside, the commit after (the connection is kept
    alive only in here)."""
    if not try_lock_search(session, job_id, step_timeout_s):
        yield False
        return
    if session.get_bind().dialect.name != "postgresql":
        yield True
        return
    raw = session.connection().connection.dbapi_connection
    keeper = _KeepAlive(raw, job_id, step_timeout_s)
    keeper.start()
    try:
        yield True
    finally:
        if not keeper.stop():
            # A keep-alive statement hangs on this connection: never hand it to anyone else.
            session.connection().invalidate()


class _KeepAlive(threading.Thread):
    def __init__(self, raw: Any, job_id: str, step_timeout_s: float) -> None:
        super().__init__(name=f"search-hold-{job_id[:8]}", daemon=True)
        self.raw, self.job_id, self.step_timeout_s = raw, job_id, step_timeout_s
        self.stopping = threading.Event()

    def run(self) -> None:
        started = time.monotonic()
        every = self.step_timeout_s / 3
        while not self.stopping.wait(every):
            held = time.monotonic() - started
            if held > self.step_timeout_s * MAX_HOLD_FACTOR:
                log.warning(
                    "job %s: a search step has held the search %.0f s (%d times "
                    "search_step_timeout_s); it is no longer kept alive",
                    self.job_id,
                    held,
                    MAX_HOLD_FACTOR,
                )
                return
            try:
                self.raw.execute("SELECT 1", prepare=False)
            except Exception as error:  # the step meets the same error at its next statement
                log.debug("job %s: search keep-alive stopped: %s", self.job_id, error)
                return

    def stop(self) -> bool:
        """Stop and wait for a statement in flight; False if it does not end."""
        self.stopping.set()
        self.join(JOIN_TIMEOUT_S)
        return not self.is_alive()
