"""Folding a job's results into its search from a pool process's background thread, so the
process takes its next trial while the fold runs (each fold is ~10-30 ms of database round trips
under the job's search lock).

Celery's pool processes switch it on (``worker.celery_app``); elsewhere (tests, the benchmarks'
in-process drivers) ``dispatcher.conclude`` folds at once and returns the new trials. A process
that stops waits for its last fold; one that dies leaves its results unfolded for at most
``reaper_interval_s`` (the reaper sends a dispatch message for them).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

_executor: ThreadPoolExecutor | None = None
_queued: set[str] = set()
_lock = threading.Lock()


def enable() -> None:
    """From now on, ``fold_soon`` folds in this process's folding thread."""
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hpsearch-fold")


def enabled() -> bool:
    return _executor is not None


def fold_soon(job_id: str) -> None:
    """Fold the job's results in the folding thread (once, however often it is asked before the
    fold starts: a fold takes every result written before it)."""
    with _lock:
        if _executor is None or job_id in _queued:
            return
        _queued.add(job_id)
        _executor.submit(_fold, job_id)


def _fold(job_id: str) -> None:
    from worker.dispatcher import dispatch
    from worker.messages import send_trials

    with _lock:
        _queued.discard(job_id)  # a result written from now on asks for another fold
    try:
        send_trials(dispatch(job_id))
    except Exception:  # dispatch handles its own failures; never let the thread die
        log.exception("folding the results of job %s failed", job_id)


def drain(timeout_s: float) -> None:
    """Wait (up to ``timeout_s``) for the folds asked for so far: the process is stopping."""
    global _executor
    with _lock:
        executor, _executor = _executor, None
    if executor is None:
        return
    done = threading.Event()
    threading.Thread(target=lambda: (executor.shutdown(wait=True), done.set()), daemon=True).start()
    if not done.wait(timeout_s):
        log.warning("stopping with folds still running; the reaper folds what they leave")
