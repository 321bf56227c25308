"""Sending run-trial messages from a worker (the dispatcher's new trials, a handed-back trial)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from db.broker import DISPATCH_JOB_TASK, RUN_TRIAL_TASK
from worker.celery_app import app

log = logging.getLogger(__name__)


def send_trials(trial_ids: Iterable[int]) -> None:
    """One run-trial message per trial. A message that cannot be sent (broker down) is not
    lost for good: the trial stays waiting and the reaper sends it again."""
    for trial_id in trial_ids:
        try:
            app.send_task(RUN_TRIAL_TASK, args=[trial_id])
        except Exception:
            log.warning("could not send trial %s; the reaper will re-send it", trial_id)


def send_dispatch(job_id: str) -> None:
    """A dispatch-job message: whichever worker takes it folds the job's new results into its
    search. Not sent (broker down): the reaper sends one for a job whose results wait."""
    try:
        app.send_task(DISPATCH_JOB_TASK, args=[job_id])
    except Exception:
        log.warning("could not send a dispatch of job %s; the reaper will", job_id)
