"""Where a trial's wall time went: its proposal, its wait in the queue, its training."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from db.settings import Settings
from tests.worker.helpers import create_job, drive, get_trials, tiny_spec


def test_every_trial_records_its_proposal_and_the_api_shows_its_wait(sqlite_url: str) -> None:
    job_id = create_job(tiny_spec(max_trials=3))
    drive(job_id)
    rows = get_trials(job_id)
    assert all(t.proposal_s is not None and t.proposal_s >= 0 for t in rows)
    assert all(t.proposed_at is not None and t.proposed_at <= t.started_at for t in rows)
    app = create_app(Settings(migrate_on_start=False, prewarm_predictor=False))
    with TestClient(app) as api:
        trial = api.get(f"/api/v1/jobs/{job_id}/trials/2").json()
    timings = trial["timings"]
    assert timings["proposal_s"] == rows[2].proposal_s
    waited = (rows[2].started_at - rows[2].proposed_at).total_seconds()
    assert timings["queued_s"] == pytest.approx(waited, abs=1e-3)
    # drive runs trials one after another: one proposed before the first started waited for it
    first_wave = [t for t in rows if t.proposed_at <= rows[0].started_at]
    assert len(first_wave) == 3, "all three were proposed at the first dispatch"
    assert first_wave[1].started_at >= rows[0].finished_at
