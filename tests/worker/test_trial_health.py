"""A trial's training health, recorded with its epochs and returned with the trial."""

from __future__ import annotations

from fastapi.testclient import TestClient

from api.main import create_app
from db.models import TrialStatus
from db.settings import Settings
from tests.worker.helpers import create_job, drive, get_epochs, get_job, get_trials, tiny_spec


def test_every_epoch_carries_its_probe_and_the_api_returns_it(sqlite_url: str) -> None:
    spec = tiny_spec(max_trials=2)
    spec["model"] = {"depth": 2, "units": 8, "activation": "relu"}
    spec["optimizer"] = {"learning_rate": {"type": "choice", "values": [0.01, 0.003]}}
    job_id = create_job(spec)
    drive(job_id)
    epochs = get_epochs(job_id)
    assert epochs and all(e.health is not None for e in epochs)
    layers = epochs[-1].health["layers"]
    assert [layer["name"] for layer in layers] == ["dense_0", "dense_1"]
    assert all(layer["act"] == "relu" and layer["g"] > 0 for layer in layers)
    assert epochs[-1].health["probe_s"] > 0
    app = create_app(Settings(migrate_on_start=False, prewarm_predictor=False))
    with TestClient(app) as api:
        trial = api.get(f"/api/v1/jobs/{job_id}/trials/0").json()
    health = trial["epochs"][0]["health"]
    assert health["layers"][0]["name"] == "dense_0"
    assert health["layers"][0]["gradient_norm"] > 0
    assert 0.0 <= health["layers"][0]["dead_share"] <= 1.0
    assert health["layers"][0]["saturated_share"] is None  # ReLU has no bound to sit at
    assert health["output_std"] > 0


def test_a_constant_initialization_is_judged_symmetric_and_the_api_says_why(
    sqlite_url: str,
) -> None:
    spec = tiny_spec(max_trials=1)
    spec["model"] = {"depth": 2, "units": 8, "activation": "relu", "kernel_initializer": "zeros"}
    job_id = create_job(spec)
    drive(job_id)
    (trial,) = get_trials(job_id)
    codes = [v["code"] for v in trial.health["verdicts"]]
    assert codes[0] == "symmetric_units"
    assert "dead_units" in codes and "collapsed" in codes
    assert 0.0 < trial.health["baseline"] < 0.3  # the majority class of ten digits
    app = create_app(Settings(migrate_on_start=False, prewarm_predictor=False))
    with TestClient(app) as api:
        found = api.get(f"/api/v1/jobs/{job_id}/trials/0").json()["health"]
    assert found["verdicts"][0]["code"] == "symmetric_units"
    assert found["verdicts"][0]["evidence"]["layer"] == "dense_0"
    assert "initializer" in found["verdicts"][0]["remedy"]


def test_the_job_summary_names_the_value_that_goes_with_a_verdict(sqlite_url: str) -> None:
    # half the trials start from a constant initialization: they, and only they, cannot learn
    spec = tiny_spec(max_trials=6, seed=5)
    spec["model"] = {
        "depth": 1,
        "units": 8,
        "kernel_initializer": {"type": "choice", "values": ["zeros", "he_normal"]},
    }
    spec["optimizer"] = {"learning_rate": {"type": "choice", "values": [0.01, 0.003, 0.03]}}
    job_id = create_job(spec)
    drive(job_id)
    trials = get_trials(job_id)
    zeros = [t for t in trials if t.hyperparameters["kernel_initializer"] == "zeros"]
    assert 3 <= len(zeros) < len(trials), "the seed must draw both initializers"
    app = create_app(Settings(migrate_on_start=False, prewarm_predictor=False))
    with TestClient(app) as api:
        summary = api.get(f"/api/v1/jobs/{job_id}/health").json()
        missing = api.get("/api/v1/jobs/" + "0" * 32 + "/health")
    assert summary["judged_trials"] == len(trials)
    assert summary["verdicts"]["symmetric_units"] == len(zeros)
    named = {(v["verdict"], v["hyperparameter"], v["value"]) for v in summary["values"]}
    assert ("symmetric_units", "kernel_initializer", "zeros") in named
    assert missing.status_code == 404


def test_a_hopeless_trial_stops_early_as_pruned_with_its_reason(sqlite_url: str) -> None:
    # zeros init: every prediction the same class; the healthy net beside it trains on
    spec = tiny_spec(max_trials=2, seed=5)
    spec["model"] = {
        "depth": 1,
        "units": 8,
        "kernel_initializer": {"type": "choice", "values": ["zeros", "he_normal"]},
    }
    spec["optimizer"] = {"learning_rate": 0.01}
    spec["training"] = {"epochs": 8, "batch_size": 32, "stop_hopeless": {"patience": 2}}
    job_id = create_job(spec)
    drive(job_id)
    trials = {t.hyperparameters["kernel_initializer"]: t for t in get_trials(job_id)}
    assert set(trials) == {"zeros", "he_normal"}, "the seed must draw both initializers"
    pruned, healthy = trials["zeros"], trials["he_normal"]
    assert pruned.status is TrialStatus.PRUNED and pruned.epochs_run == 2
    assert pruned.failure_reason.startswith("hopeless: val_accuracy no better than")
    assert "constant" in pruned.failure_reason or "identical" in pruned.failure_reason
    assert pruned.score is not None and pruned.score <= pruned.health["baseline"] + 0.005
    assert "collapsed" in [v["code"] for v in pruned.health["verdicts"]]
    assert healthy.status is TrialStatus.COMPLETED and healthy.epochs_run == 8
    job = get_job(job_id)
    assert (job.trials_completed, job.trials_pruned, job.trials_done) == (1, 1, 2)
    assert job.best_trial_number == healthy.number  # a pruned trial is never the best
    app = create_app(Settings(migrate_on_start=False, prewarm_predictor=False))
    with TestClient(app) as api:
        shown = api.get(f"/api/v1/jobs/{job_id}").json()
        listed = api.get(f"/api/v1/jobs/{job_id}/trials", params={"status": "pruned"}).json()
    assert shown["trials_pruned"] == 1 and shown["progress"] == 1.0
    assert [t["number"] for t in listed["items"]] == [pruned.number]


def test_a_trial_is_never_pruned_when_stop_hopeless_is_off(sqlite_url: str) -> None:
    spec = tiny_spec(max_trials=2)
    spec["model"] = {"depth": 1, "units": 8, "kernel_initializer": "zeros"}
    spec["training"] = {
        "epochs": 4,
        "batch_size": 32,
        "stop_hopeless": {"enabled": False, "patience": 1},
    }
    job_id = create_job(spec)
    drive(job_id)
    assert [(t.status, t.epochs_run) for t in get_trials(job_id)] == [
        (TrialStatus.COMPLETED, 4)
    ] * 2


def test_a_single_configuration_trains_to_the_end_by_default(sqlite_url: str) -> None:
    # nothing else to spend the budget on: the user asked to see this network train
    spec = tiny_spec(max_trials=1)
    spec["model"] = {"depth": 1, "units": 8, "kernel_initializer": "zeros"}
    spec["optimizer"] = {"learning_rate": 0.01}
    spec["training"] = {"epochs": 4, "batch_size": 32, "stop_hopeless": {"patience": 1}}
    job_id = create_job(spec)
    drive(job_id)
    (trial,) = get_trials(job_id)
    assert trial.status is TrialStatus.COMPLETED and trial.epochs_run == 4
    assert "collapsed" in [v["code"] for v in trial.health["verdicts"]]


def test_verdicts_read_whether_inputs_were_scaled_fixed_or_searched() -> None:
    from search_spaces.schema import InputSpec
    from worker.training.trial_health import judged_values

    fixed = InputSpec.model_validate({"standardize": True})
    assert judged_values(fixed, {})["standardize"] is True
    raw = InputSpec.model_validate({"standardize": False})
    assert judged_values(raw, {"learning_rate": 0.5}) == {
        "learning_rate": 0.5,
        "standardize": False,
    }
    assert judged_values(raw, {"input_standardize": True})["standardize"] is True
    rescaled = InputSpec.model_validate({"standardize": False, "rescale": 1 / 255})
    assert judged_values(rescaled, {})["standardize"] is True
