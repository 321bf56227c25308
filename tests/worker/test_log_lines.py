"""A worker's log names the job, the trial's number (as the user sees it), its score and
duration: not a Celery task id and an internal row id."""

from __future__ import annotations

import logging

import pytest

from db.models import TrialStatus
from db.repositories.trials import TrialResult
from tests.worker.helpers import create_job, drive, tiny_spec
from worker.attempt import describe_result


def test_a_finished_trial_is_logged_with_its_job_number_score_and_duration(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = create_job(tiny_spec(max_trials=2))
    with caplog.at_level(logging.INFO, logger="worker.attempt"):
        drive(job_id)
    lines = [r.getMessage() for r in caplog.records if r.name == "worker.attempt"]
    for number in (0, 1):
        (line,) = [m for m in lines if m.startswith(f"job {job_id} trial {number} ")]
        assert " completed score " in line and line.endswith(" s"), line


def test_a_failed_trial_says_why() -> None:
    failed = TrialResult(TrialStatus.FAILED, failure_reason="NaN loss", duration_s=1.25)
    assert describe_result(failed) == "failed in 1.2 s - NaN loss"
