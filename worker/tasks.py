"""Celery tasks: thin wrappers taking ids; everything else is read back from the database."""

from __future__ import annotations

import os
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from db.broker import RUN_JOB_TASK
from db.settings import get_settings
from worker.celery_app import app


@app.task(name=RUN_JOB_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
def run_job(self: Any, job_id: str) -> None:
    """Run (or resume) the search of ``job_id``. TensorFlow is imported lazily, in the child."""
    from worker.search import run_search

    try:
        run_search(job_id, worker_name=f"{self.request.hostname}:{os.getpid()}")
    except SoftTimeLimitExceeded:
        from worker.tuning.recorder import fail_job

        limit = get_settings().job_soft_time_limit_s
        fail_job(job_id, f"stopped by the worker's soft time limit ({limit} s)")
