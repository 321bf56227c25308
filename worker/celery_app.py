"""The Celery application of the workers.

TensorFlow is not fork-safe: nothing here (nor ``worker.tasks``, nor the reaper) imports it.
Each prefork child imports it in ``worker_process_init`` (after the fork), where it also gets
fresh DB engines.

The main process runs the reaper thread (``worker.reaper``) from ``worker_ready``, and on
shutdown (``worker_shutting_down``: SIGTERM, warm) asks its pool's running trials to go back to
the queue at their next epoch, so another worker takes them at once.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery
from celery.signals import (
    setup_logging,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutting_down,
)

from db.broker import celery_config, tune_embedded_transport
from db.engine import reset_engines
from db.settings import get_settings

log = logging.getLogger(__name__)

get_settings().apply_log_level()
if get_settings().log_level != "DEBUG":
    # "Task hpsearch.run_trial[<uuid>] succeeded in 3.55s: None" says nothing the worker's own
    # line does not ("job <id> trial <n> completed score ... in 3.5 s"); failures still show.
    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
app = Celery("hpsearch")
app.conf.update(celery_config(get_settings()))
if get_settings().is_embedded_broker:
    tune_embedded_transport()
app.conf.include = ["worker.tasks"]

_reaper: Any = None
#: seconds a warm shutdown retries handing its running trials back.
SHUTDOWN_RETRY_BUDGET_S = 3.0
#: seconds a stopping pool process waits for its last folds.
FOLD_DRAIN_S = 5.0


@worker_process_init.connect
def _init_worker_process(**_: Any) -> None:
    """In each forked child: no DB sockets shared with the parent, TF loaded and tuned here."""
    # close=False: the parent's pooled connections stay usable by the parent (its reaper).
    reset_engines(close=False)
    from worker import folding
    from worker.training.threads import configure_tensorflow

    configure_tensorflow(get_settings().tf_threads)
    folding.enable()  # a trial's result is folded into its job's search while the next one starts


@worker_process_shutdown.connect
def _finish_folds(**_: Any) -> None:
    """A pool process that stops finishes the folds it was asked for (a few seconds at most)."""
    from worker import folding

    folding.drain(FOLD_DRAIN_S)


def _json_logging(loglevel: Any = None, **_: Any) -> None:
    """JSON logs: Celery leaves logging to the service (a receiver of ``setup_logging`` tells
    it not to set up its own handlers), so its records, its pool's and the service's reach the
    root logger's JSON handler alike."""
    get_settings().apply_log_level()
    if loglevel:
        logging.getLogger().setLevel(loglevel)


if get_settings().log_format == "json":
    setup_logging.connect(_json_logging)


@worker_ready.connect
def _start_reaper(**_: Any) -> None:
    """Recover at once (a restart after a crash), then every ``reaper_interval_s``."""
    global _reaper
    from worker.reaper import Reaper

    _reaper = Reaper(get_settings().reaper_interval_s).start()


@worker_shutting_down.connect
def _release_running_trials(**_: Any) -> None:
    """Warm shutdown: this worker's running trials stop at their next epoch and go back to the
    queue (not counted as an attempt), instead of the shutdown waiting for them to finish."""
    from db.repositories import workers
    from db.repositories.trials import request_release
    from db.transient import retry_budget
    from worker.reaper import main_process_name, worker_prefix

    if _reaper is not None:
        _reaper.stop()
    try:
        with retry_budget(SHUTDOWN_RETRY_BUDGET_S):
            workers.note_stopped(main_process_name())
    except Exception as error:
        log.warning("could not say this worker stopped: %s", error)
    try:
        # A shutdown must not wait for a database that is away: the lease then expires and
        # the reaper takes the trials back.
        with retry_budget(SHUTDOWN_RETRY_BUDGET_S):
            asked = request_release(worker_prefix())
        if asked:
            log.warning("shutting down: %d running trial(s) handed back to the queue", asked)
    except Exception as error:
        log.warning("could not hand back the running trials: %s", error)
