"""Sending run-trial messages from a worker (the dispatcher's new trials, a handed-back trial)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from db.broker import RUN_TRIAL_TASK
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
