"""Celery tasks: thin wrappers taking ids; everything else is read back from the database.

Both are idempotent: ``dispatch_job`` only creates trials while the job is under its concurrency
cap (under the job's row lock), and ``run_trial`` claims its trial by a compare-and-set, so a
duplicate message (redelivery, the reaper's re-send, two workers racing) does nothing. Their
bodies are imported lazily, in the pool process that runs them.
"""

from __future__ import annotations

from db.broker import DISPATCH_JOB_TASK, RUN_TRIAL_TASK
from worker.celery_app import app
from worker.messages import send_trials


@app.task(name=DISPATCH_JOB_TASK, acks_late=True, reject_on_worker_lost=True)
def dispatch_job(job_id: str) -> None:
    """Hand out the job's next trials (up to its concurrency cap), or end it."""
    from worker.dispatcher import dispatch

    send_trials(dispatch(job_id))


@app.task(name=RUN_TRIAL_TASK, acks_late=True, reject_on_worker_lost=True)
def run_trial(trial_id: int) -> None:
    """Claim, train and record one trial, then dispatch the job's next ones."""
    from worker.attempt import attempt_trial

    send_trials(attempt_trial(trial_id))
