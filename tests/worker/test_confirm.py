"""``search.confirm``: a search's best configurations trained again with other seeds, and the
job's best (and the model it serves) chosen by their means."""

from __future__ import annotations

import statistics

from fastapi.testclient import TestClient

from api.main import create_app
from db.models import JobStatus, TrialStatus
from db.settings import Settings
from tests.worker.helpers import (
    create_job,
    drive,
    get_artifacts,
    get_epochs,
    get_job,
    get_trials,
    tiny_spec,
)


def test_the_best_configurations_are_confirmed_and_ranked_by_their_means(
    sqlite_url: str,
) -> None:
    spec = tiny_spec(max_trials=3, seed=3, top_k=2, confirm={"top_k": 2, "seeds": 2})
    spec["training"] = {"epochs": 3, "batch_size": 32, "early_stopping": {"enabled": False}}
    job_id = create_job(spec)
    assert get_job(job_id).max_trials == 3 + 2 * 2
    drive(job_id)
    job = get_job(job_id)
    trials = get_trials(job_id)
    assert job.status is JobStatus.SUCCEEDED and len(trials) == 7
    assert all(t.status is TrialStatus.COMPLETED for t in trials)
    searched = [t for t in trials if t.confirms is None]
    runs = [t for t in trials if t.confirms is not None]
    assert [t.number for t in searched] == [0, 1, 2]
    top = sorted(searched, key=lambda t: (-t.score, t.number))[:2]
    # each of the two best configurations twice more, with seeds 0 and 1, the same values
    assert sorted((t.confirms, t.confirm_seed) for t in runs) == sorted(
        (t.number, s) for t in top for s in (0, 1)
    )
    by_number = {t.number: t for t in trials}
    assert all(t.hyperparameters == by_number[t.confirms].hyperparameters for t in runs)
    # another seed: other initial weights (the first probe's weight norms differ)
    first_w = {}
    for e in get_epochs(job_id):
        first_w.setdefault(e.trial_id, e.health["layers"][0]["w"] if e.health else None)
    original = top[0]
    again = next(t for t in runs if t.confirms == original.number)
    assert first_w[again.id] != first_w[original.id]
    # the job's best: the configuration with the best mean over its three runs
    means = {
        t.number: statistics.mean([t.score] + [r.score for r in runs if r.confirms == t.number])
        for t in top
    }
    winner = max(means, key=lambda n: (means[n], -n))
    assert job.best_trial_number == winner
    assert abs(job.best_score - means[winner]) < 1e-9

    # the model served is the winner's best run; the second stored (top_k 2), the other's
    def runs_of(number: int) -> set[int]:
        return {number} | {r.number for r in runs if r.confirms == number}

    other = next(n for n in means if n != winner)
    stored = get_artifacts(job_id)
    assert [a.rank for a in stored] == [1, 2]
    assert stored[0].trial_number in runs_of(winner) and stored[1].trial_number in runs_of(other)
    app = create_app(Settings(migrate_on_start=False, prewarm_predictor=False))
    with TestClient(app) as api:
        shown = api.get(f"/api/v1/jobs/{job_id}/trials/{again.number}").json()
        written = api.get(f"/api/v1/jobs/{job_id}/trials/{again.number}/spec").json()
    assert (shown["confirms"], shown["confirm_seed"]) == (original.number, again.confirm_seed)
    # its spec trains it again: its own seed, and no confirmation of its own
    assert written["search"]["seed"] != 3 and written["search"]["confirm"] is None


def test_a_configuration_that_fails_a_seed_is_not_confirmed(sqlite_url: str) -> None:
    from db.engine import session_scope
    from db.models import Job, Trial
    from db.repositories import confirm

    spec = tiny_spec(max_trials=3, seed=3, confirm={"top_k": 2, "seeds": 1})
    spec["training"] = {"epochs": 2, "batch_size": 32}
    job_id = create_job(spec)
    drive(job_id)
    with session_scope() as session:
        job = session.get_one(Job, job_id)
        confirmed = confirm.confirmed(session, job, 2, 1)
        assert len(confirmed) == 2
        # one configuration's confirmation run diverged after all: it drops out
        run = session.query(Trial).filter(Trial.job_id == job_id, Trial.confirms == confirmed[0][0])
        run.one().status = TrialStatus.DIVERGED
        session.flush()
        assert [c[0] for c in confirm.confirmed(session, job, 2, 1)] == [confirmed[1][0]]
