"""The Celery application of the workers.

TensorFlow is not fork-safe: nothing here (nor ``worker.tasks``) imports it. Each prefork child
imports it in ``worker_process_init`` (after the fork), where it also gets fresh DB engines.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_ready

from db.broker import RUN_JOB_TASK, celery_config
from db.engine import reset_engines
from db.settings import get_settings

log = logging.getLogger(__name__)

app = Celery("hpsearch")
app.conf.update(celery_config(get_settings()))
app.conf.include = ["worker.tasks"]


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
    reset_engines()
    configure_tensorflow(get_settings().tf_threads)


def requeue_stale_jobs() -> list[str]:
    """Re-send the jobs whose message was probably lost (running without a recent heartbeat, or
    queued for longer than ``stale_after_s``). Duplicates are harmless: the claim is a CAS."""
    from worker.tuning.recorder import stale_job_ids

    settings = get_settings()
    job_ids = stale_job_ids(settings.stale_after_s)
    for job_id in job_ids:
        app.send_task(RUN_JOB_TASK, args=[job_id])
    if job_ids:
        log.warning("re-sent %d stale job(s): %s", len(job_ids), ", ".join(job_ids))
    return job_ids


@worker_ready.connect
def _recover_on_start(**_: Any) -> None:
    try:
        requeue_stale_jobs()
    except Exception:  # recovery must never stop the worker from serving
        log.exception("stale-job recovery failed")
    finally:
        reset_engines()  # the parent forks children later: leave no open sockets behind
