"""A technique study run by the worker: each variant with each seed on the same split, and its
table from the API and the CLI."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.cli import study_view
from api.main import create_app
from db.models import JobStatus, TrialStatus
from db.settings import Settings
from tests.worker.helpers import create_job, drive, get_epochs, get_job, get_trials, tiny_spec


def _study_spec() -> dict:
    spec = tiny_spec()
    spec["model"] = {"depth": 1, "units": 8, "kernel_initializer": "he_normal"}
    spec["optimizer"] = {"learning_rate": 0.01}
    spec["training"] = {"epochs": 3, "batch_size": 32}
    del spec["search"]["max_trials"]
    spec["study"] = {
        "variants": {
            "he_normal": {},
            "zeros": {"model": {"kernel_initializer": "zeros"}},
            "two layers": {"model": {"layers": [8, 8]}},
        },
        "seeds": 2,
    }
    return spec


def test_a_study_trains_every_variant_with_every_seed_and_reads_them(sqlite_url: str) -> None:
    job_id = create_job(_study_spec())
    drive(job_id)
    job = get_job(job_id)
    assert job.status is JobStatus.SUCCEEDED and job.max_trials == 6
    trials = get_trials(job_id)
    assert [(t.hyperparameters["variant"], t.hyperparameters["seed"]) for t in trials] == [
        ("he_normal", 0), ("zeros", 0), ("two layers", 0),
        ("he_normal", 1), ("zeros", 1), ("two layers", 1),
    ]  # fmt: skip
    assert all(t.status is TrialStatus.COMPLETED for t in trials)
    # the variant's own network: two hidden layers where it says so
    by_trial = {t.id: t.number for t in trials}
    layers = {by_trial[e.trial_id]: len(e.health["layers"]) for e in get_epochs(job_id) if e.health}
    assert layers[2] == layers[5] == 2 and layers[0] == 1
    # the seeds differ: other initial weights (the first probe's norms), other scores
    first = {}
    for e in get_epochs(job_id):
        if e.health and by_trial[e.trial_id] not in first:
            first[by_trial[e.trial_id]] = e.health["layers"][0]["w"]
    assert first[0] != first[3]
    scores = {(t.hyperparameters["variant"], t.hyperparameters["seed"]): t.score for t in trials}
    assert scores[("he_normal", 0)] != scores[("he_normal", 1)]

    app = create_app(Settings(migrate_on_start=False, prewarm_predictor=False))
    with TestClient(app) as api:
        study = api.get(f"/api/v1/jobs/{job_id}/study").json()
        written = api.get(f"/api/v1/jobs/{job_id}/trials/5/spec").json()
    # a trial's spec trains its variant with its seed, as one configuration
    assert [layer["units"] for layer in written["model"]["layers"]] == [8, 8]
    assert written["training"]["seed"] == 1
    assert written.get("study") is None and written["search"]["max_trials"] == 1
    assert study["baseline"] == "he_normal" and study["trials_ended"] == 6
    rows = {v["name"]: v for v in study["variants"]}
    assert rows["he_normal"]["objective"]["n"] == 2
    assert rows["zeros"]["objective"]["mean"] < rows["he_normal"]["objective"]["mean"]
    assert rows["zeros"]["vs_baseline"]["objective"]["delta"] < 0
    assert rows["zeros"]["reading"].startswith("zeros: -")
    assert len(rows["two layers"]["curve"]) == 3
    assert study["reading"] == [rows["zeros"]["reading"], rows["two layers"]["reading"]]
    markdown = study_view.markdown(study)
    assert "| he_normal | 2 |" in markdown and "| baseline |" in markdown
    csv_lines = study_view.csv_text(study).splitlines()
    assert csv_lines[0].startswith("variant,is_baseline,n,mean") and len(csv_lines) == 4


def test_a_search_job_has_no_study(sqlite_url: str) -> None:
    job_id = create_job(tiny_spec(max_trials=1))
    app = create_app(Settings(migrate_on_start=False, prewarm_predictor=False))
    with TestClient(app) as api:
        refused = api.get(f"/api/v1/jobs/{job_id}/study")
    assert refused.status_code == 409 and "not a technique study" in refused.text
