"""run_search end to end on a migrated database: every algorithm, failures, cancel, resume."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from db.engine import session_scope
from db.models import Job, JobStatus, TrialStatus
from db.settings import get_settings
from tests.worker.helpers import (
    create_job,
    get_artifacts,
    get_epochs,
    get_job,
    get_trials,
    tiny_spec,
)
from worker.search import run_search
from worker.tuning import recorder


def _check_finished_search(job_id: str, expected_trials: int) -> None:
    job = get_job(job_id)
    trials = get_trials(job_id)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert job.error is None
    assert job.finished_at is not None and job.attempts == 1
    assert len(trials) == expected_trials == job.max_trials
    assert [t.number for t in trials] == list(range(expected_trials))
    completed = [t for t in trials if t.status is TrialStatus.COMPLETED]
    assert job.trials_completed == len(completed) > 0
    best = max(completed, key=lambda t: (t.score, -t.number))
    assert (job.best_trial_number, job.best_score) == (best.number, best.score)
    epochs = get_epochs(job_id)
    assert epochs and all("val_accuracy" in e.metrics and e.duration_s > 0 for e in epochs)
    assert all(e.learning_rate and e.learning_rate > 0 for e in epochs)
    for t in completed:
        assert t.epochs_run == sum(1 for e in epochs if e.trial_id == t.id)
        assert t.parameter_count and t.parameter_count > 0
        assert 0 < t.fit_duration_s <= t.duration_s
        assert t.metrics and t.best_epoch is not None
    assert job.dataset_info["rows_train"] == 160
    assert job.oracle_state and len(job.oracle_state["trials"]) == expected_trials
    assert not (get_settings().data_dir / "scratch" / job_id).exists()


def _check_artifact(job_id: str, tmp_path: Path) -> None:
    import keras

    import search_spaces.keras_objects  # noqa: F401

    job = get_job(job_id)
    (artifact,) = get_artifacts(job_id)
    assert artifact.rank == 1 and artifact.trial_number == job.best_trial_number
    assert artifact.sha256 == hashlib.sha256(artifact.content).hexdigest()
    assert artifact.size_bytes == len(artifact.content)
    sig = artifact.signature
    assert sig["task"] == "multiclass" and sig["input_shape"] == [64] and sig["n_outputs"] == 10
    assert sig["class_labels"] == [str(i) for i in range(10)]
    assert sig["objective"] == "val_accuracy" and sig["score"] == job.best_score
    assert sig["keras_version"] == keras.__version__
    path = tmp_path / "model.keras"
    path.write_bytes(artifact.content)
    model = keras.saving.load_model(path)
    assert model.predict(np.zeros((3, 64), "float32"), verbose=0).shape == (3, 10)


@pytest.mark.parametrize(
    ("algorithm", "extra", "expected_trials"),
    [
        ("random", {}, 3),
        ("bayesian", {"num_initial_points": 2, "executions_per_trial": 2}, 3),
        # max_epochs 3, factor 3: bracket 1 runs 3 one-epoch trials then promotes 1 to 3 epochs,
        # bracket 0 runs 2 three-epoch trials.
        ("hyperband", {"hyperband_factor": 3}, 6),
        ("grid", {"max_trials": 4}, 4),
    ],
)
def test_each_algorithm_end_to_end(
    sqlite_url: str, tmp_path: Path, algorithm: str, extra: dict[str, Any], expected_trials: int
) -> None:
    spec = tiny_spec(algorithm=algorithm, **extra)
    if algorithm == "hyperband":
        spec["training"]["epochs"] = 3
    job_id = create_job(spec)
    run_search(job_id, worker_name="test-worker")
    _check_finished_search(job_id, expected_trials)
    _check_artifact(job_id, tmp_path)
    trials = get_trials(job_id)
    epochs = get_epochs(job_id)
    if algorithm == "bayesian":
        assert {e.execution for e in epochs} == {0, 1}
    if algorithm == "hyperband":
        promoted = [t for t in trials if "tuner/trial_id" in t.hyperparameters]
        assert promoted, "successive halving promoted no trial"
        for t in promoted:
            first = t.hyperparameters["tuner/initial_epoch"]
            assert next(e.epoch for e in epochs if e.trial_id == t.id) == first
    if algorithm == "grid":
        values = [(t.hyperparameters["depth"], t.hyperparameters["units"]) for t in trials]
        assert len(set(map(str, [t.hyperparameters for t in trials]))) == len(trials)
        assert values[0] == (1, 8)


def test_search_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    job_id = create_job(tiny_spec(max_trials=2, top_k=2))
    run_search(job_id)
    _check_finished_search(job_id, 2)
    ranks = [a.rank for a in get_artifacts(job_id)]
    assert ranks == [1, 2]


def test_all_fixed_spec_trains_exactly_one_trial(sqlite_url: str) -> None:
    spec = {
        "dataset": {"name": "digits", "max_rows": 200},
        "model": {"depth": 1, "units": 8},
        "training": {"epochs": 2},
        "search": {"algorithm": "hyperband", "max_trials": 5, "seed": 0},
    }
    job_id = create_job(spec)
    run_search(job_id)
    job, trials = get_job(job_id), get_trials(job_id)
    assert job.status is JobStatus.SUCCEEDED and job.max_trials == 1
    assert len(trials) == 1 and trials[0].epochs_run == 2


def test_divergence_is_recorded_and_never_best(sqlite_url: str) -> None:
    spec = {
        "dataset": {"name": "diabetes", "max_rows": 200},
        "model": {"depth": 2, "units": 16, "input": {"standardize": False}},
        "optimizer": {
            "name": "sgd",
            "learning_rate": {"type": "choice", "values": [10.0, 0.001]},
        },
        "training": {"epochs": 3, "early_stopping": {"enabled": False}},
        "search": {"algorithm": "grid", "max_trials": 2, "seed": 0},
    }
    job_id = create_job(spec)
    run_search(job_id)
    job = get_job(job_id)
    diverged, ok = get_trials(job_id)
    assert diverged.status is TrialStatus.DIVERGED
    assert diverged.failure_reason and diverged.failure_reason.startswith("loss became")
    assert diverged.score is None
    assert ok.status is TrialStatus.COMPLETED
    assert job.status is JobStatus.SUCCEEDED
    assert (job.trials_diverged, job.trials_completed) == (1, 1)
    assert job.best_trial_number == ok.number
    assert [a.trial_number for a in get_artifacts(job_id)] == [ok.number]


def test_job_with_only_diverged_trials_fails_with_a_clear_error(sqlite_url: str) -> None:
    spec = {
        "dataset": {"name": "diabetes", "max_rows": 200},
        "model": {"depth": 2, "units": 16, "input": {"standardize": False}},
        "optimizer": {"name": "sgd", "learning_rate": 10.0},
        "training": {"epochs": 3},
    }
    job_id = create_job(spec)
    run_search(job_id)
    job = get_job(job_id)
    assert job.status is JobStatus.FAILED
    assert job.error == "no trial completed (0 failed, 1 diverged)"
    assert job.best_trial_number is None and not get_artifacts(job_id)


def test_cancel_before_start(sqlite_url: str) -> None:
    job_id = create_job(tiny_spec(), cancel_requested=True)
    run_search(job_id)
    job = get_job(job_id)
    assert job.status is JobStatus.CANCELLED and job.finished_at is not None
    assert get_trials(job_id) == []


def test_cancel_while_running(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    job_id = create_job(tiny_spec(max_trials=3))
    original = recorder.record_epoch

    def cancel_after_first_epoch(*args: Any, **kwargs: Any) -> None:
        original(*args, **kwargs)
        with session_scope() as session:
            session.get_one(Job, job_id).cancel_requested = True

    monkeypatch.setattr(recorder, "record_epoch", cancel_after_first_epoch)
    run_search(job_id)
    job = get_job(job_id)
    (trial,) = get_trials(job_id)  # the queued trials never started
    assert job.status is JobStatus.CANCELLED
    assert trial.status is TrialStatus.CANCELLED and trial.epochs_run == 1


def test_duplicate_delivery_does_nothing(sqlite_url: str) -> None:
    job_id = create_job(tiny_spec())
    assert recorder.claim_job(job_id, "first-worker", get_settings().stale_after_s)
    run_search(job_id, worker_name="second-worker")
    job = get_job(job_id)
    assert job.worker == "first-worker" and job.attempts == 1
    assert job.status is JobStatus.RUNNING and get_trials(job_id) == []
    # A final job is never claimed again either.
    with session_scope() as session:
        session.get_one(Job, job_id).status = JobStatus.SUCCEEDED
    run_search(job_id, worker_name="third-worker")
    assert get_job(job_id).worker == "first-worker"


class WorkerDied(BaseException):
    """Stands for a killed worker process: escapes run_search's error handling."""


def test_resume_after_a_crash(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    job_id = create_job(tiny_spec(max_trials=4))
    original = recorder.record_epoch
    seen: set[int] = set()

    def die_in_third_trial(trial_id: int, *args: Any, **kwargs: Any) -> None:
        original(trial_id, *args, **kwargs)
        seen.add(trial_id)
        if len(seen) == 3:
            raise WorkerDied

    monkeypatch.setattr(recorder, "record_epoch", die_in_third_trial)
    with pytest.raises(WorkerDied):
        run_search(job_id, worker_name="doomed")
    monkeypatch.setattr(recorder, "record_epoch", original)

    before = get_trials(job_id)
    assert [t.status for t in before] == [TrialStatus.COMPLETED] * 2 + [TrialStatus.RUNNING]
    assert before[2].epochs_run == 1
    job = get_job(job_id)
    assert job.status is JobStatus.RUNNING and job.oracle_state
    # A fresh heartbeat keeps other workers away...
    run_search(job_id, worker_name="rescuer")
    assert get_job(job_id).worker == "doomed"
    # ...a stale one lets them resume.
    stale = datetime.now(UTC) - timedelta(seconds=get_settings().stale_after_s + 5)
    with session_scope() as session:
        session.get_one(Job, job_id).heartbeat_at = stale
    run_search(job_id, worker_name="rescuer")

    job = get_job(job_id)
    after = get_trials(job_id)
    assert job.status is JobStatus.SUCCEEDED and job.attempts == 2 and job.worker == "rescuer"
    assert [t.number for t in after] == [0, 1, 2, 3]
    assert all(t.status is TrialStatus.COMPLETED for t in after)
    assert after[2].hyperparameters == before[2].hyperparameters
    assert [(t.id, t.score) for t in after[:2]] == [(t.id, t.score) for t in before[:2]]
    assert after[2].epochs_run == 2
    epochs = [e.epoch for e in get_epochs(job_id) if e.trial_id == after[2].id]
    assert epochs == [0, 1]
    assert job.trials_completed == 4


def test_poison_job_stops_after_max_attempts(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPSEARCH_MAX_JOB_ATTEMPTS", "2")
    get_settings.cache_clear()
    stale = datetime.now(UTC) - timedelta(hours=1)
    job_id = create_job(tiny_spec(), status=JobStatus.RUNNING, attempts=2, heartbeat_at=stale)
    run_search(job_id)
    job = get_job(job_id)
    assert job.status is JobStatus.FAILED and "gave up after 2 attempts" in (job.error or "")


def test_unexpected_error_fails_the_job(sqlite_url: str) -> None:
    spec = tiny_spec()
    job_id = create_job(spec)
    with session_scope() as session:  # a stored spec that no longer validates
        session.get_one(Job, job_id).spec = {**spec, "bogus": 1}
    run_search(job_id)
    job = get_job(job_id)
    assert job.status is JobStatus.FAILED and "ValidationError" in (job.error or "")


def test_time_limit_already_spent_fails_without_trials(sqlite_url: str) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    job_id = create_job(tiny_spec(time_limit_s=60), started_at=long_ago)
    run_search(job_id)
    job = get_job(job_id)
    assert job.status is JobStatus.FAILED and get_trials(job_id) == []
    assert (job.error or "").startswith("the time limit was reached before any trial completed")


def test_soft_time_limit_fails_the_job_with_the_reason(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from celery.exceptions import SoftTimeLimitExceeded

    import worker.search
    from worker.tasks import run_job

    def too_slow(*_: Any) -> None:
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(worker.search, "_search", too_slow)
    job_id = create_job(tiny_spec())
    run_job.apply(args=[job_id])
    job = get_job(job_id)
    assert job.status is JobStatus.FAILED
    assert "soft time limit" in (job.error or "")


def test_heartbeat_refreshes_the_lease_and_notices_losing_it(
    sqlite_url: str,
) -> None:
    import time

    from worker.search import Heartbeat

    job_id = create_job(tiny_spec())
    assert recorder.claim_job(job_id, "me", 60)
    first = get_job(job_id).heartbeat_at
    with Heartbeat(job_id, "me", 0.05) as beat:
        time.sleep(0.3)
        assert get_job(job_id).heartbeat_at > first
        with session_scope() as session:
            session.get_one(Job, job_id).worker = "someone-else"
        time.sleep(0.3)
        assert beat.lost
