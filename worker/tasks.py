"""Celery tasks: thin wrappers taking ids; everything else is read back from the database.

Both are idempotent: ``dispatch_job`` only creates trials while the job is under its concurrency
cap (under the job's row lock), and ``run_trial`` claims its trial by a compare-and-set, so a
duplicate message (redelivery, the reaper's re-send, two workers racing) does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from db.broker import DISPATCH_JOB_TASK, RUN_TRIAL_TASK
from worker.celery_app import app

log = logging.getLogger(__name__)


def send_trials(trial_ids: Iterable[int]) -> None:
    """One run-trial message per trial. A message that cannot be sent (broker down) is not
    lost for good: the trial stays WAITING and the reaper sends it again."""
    for trial_id in trial_ids:
        try:
            app.send_task(RUN_TRIAL_TASK, args=[trial_id])
        except Exception:
            log.warning("could not send trial %s; the reaper will re-send it", trial_id)


@app.task(name=DISPATCH_JOB_TASK, acks_late=True, reject_on_worker_lost=True)
def dispatch_job(job_id: str) -> None:
    """Hand out the job's next trials (up to its concurrency cap), or end it."""
    from worker.scheduler import dispatch

    send_trials(dispatch(job_id))


@app.task(name=RUN_TRIAL_TASK, acks_late=True, reject_on_worker_lost=True)
def run_trial(trial_id: int) -> None:
    """Claim, train and record one trial, then dispatch the job's next ones. TensorFlow is
    imported lazily, in the pool child."""
    from worker.search import run_trial as run

    send_trials(run(trial_id))
