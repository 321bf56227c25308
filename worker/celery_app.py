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
import os
from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_ready, worker_shutting_down

from db.broker import celery_config, tune_embedded_transport
from db.engine import reset_engines
from db.settings import get_settings

log = logging.getLogger(__name__)

app = Celery("hpsearch")
app.conf.update(celery_config(get_settings()))
if get_settings().is_embedded_broker:
    tune_embedded_transport()
app.conf.include = ["worker.tasks"]

_reaper: Any = None


def configure_tensorflow(threads: int) -> None:
    """Import TensorFlow and set its intra/inter-op thread pools (0 keeps TF's default)."""
    # TensorFlow's C++ start-up chatter (oneDNN, CPU features) is noise in a worker's log.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    if threads <= 0:
        return
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # the TF runtime was already initialised in this process
        log.warning("TensorFlow already initialised; thread settings left as they are")


@worker_process_init.connect
def _init_worker_process(**_: Any) -> None:
    """In each forked child: no DB sockets shared with the parent, TF loaded and tuned here."""
    # close=False: the parent's pooled connections stay usable by the parent (its reaper).
    reset_engines(close=False)
    configure_tensorflow(get_settings().tf_threads)


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
    from worker.reaper import worker_prefix
    from worker.tuning.recorder import request_release

    if _reaper is not None:
        _reaper.stop()
    try:
        asked = request_release(worker_prefix())
        if asked:
            log.warning("shutting down: %d running trial(s) handed back to the queue", asked)
    except Exception:  # the DB is down: the heartbeat lease expires and the reaper re-queues
        log.exception("could not hand back the running trials")
