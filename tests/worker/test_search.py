"""Trials as units of work, run in-process on a migrated database: every algorithm, failures,
cancel, duplicate deliveries, crashes, poison trials, warm hand-back, the concurrency cap."""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from db.engine import session_scope
from db.models import Job, JobStatus, Trial, TrialCheckpoint, TrialStatus
from db.repositories import recovery
from db.repositories import trials as trial_store
from db.settings import get_settings
from tests.worker.helpers import (
    create_job,
    drive,
    get_artifacts,
    get_epochs,
    get_job,
    get_trials,
    tiny_spec,
)
from worker.attempt import attempt_trial as run_trial
from worker.dispatcher import dispatch


def _check_finished_search(job_id: str, expected_trials: int) -> None:
    job = get_job(job_id)
    trials = get_trials(job_id)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert job.error is None
    assert job.finished_at is not None
    assert len(trials) == expected_trials == job.max_trials
    assert [t.number for t in trials] == list(range(expected_trials))
    assert all(t.attempts == 1 and t.worker for t in trials)
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
    # the search's own state, small: its trials are read from their rows
    assert job.oracle_state and "trials" not in job.oracle_state
    assert len(job.oracle_state["start_order"]) == expected_trials
    assert job.oracle_state["ongoing_trials"] == {}
    with session_scope() as session:  # Hyperband checkpoints go with the job's end
        assert not session.scalars(select(TrialCheckpoint.id)).all()


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
    sqlite_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    algorithm: str,
    extra: dict[str, Any],
    expected_trials: int,
) -> None:
    spec = tiny_spec(algorithm=algorithm, **extra)
    if algorithm == "hyperband":
        spec["training"]["epochs"] = 3
    job_id = create_job(spec)
    drive(job_id)
    _check_finished_search(job_id, expected_trials)
    _check_artifact(job_id, tmp_path)
    trials = get_trials(job_id)
    epochs = get_epochs(job_id)
    if algorithm == "bayesian":
        assert {e.execution for e in epochs} == {0, 1}
    if algorithm == "hyperband":
        promoted = [t for t in trials if "tuner/trial_id" in t.hyperparameters]
        assert promoted, "successive halving promoted no trial"
        for t in promoted:  # continued from the promoted trial's weights, kept in the DB
            first = t.hyperparameters["tuner/initial_epoch"]
            assert next(e.epoch for e in epochs if e.trial_id == t.id) == first
        assert "checkpoint" not in caplog.text
    if algorithm == "grid":
        values = [(t.hyperparameters["depth"], t.hyperparameters["units"]) for t in trials]
        assert len(set(map(str, [t.hyperparameters for t in trials]))) == len(trials)
        assert values[0] == (1, 8)


def test_search_on_postgresql(postgres_url: str) -> None:
    job_id = create_job(tiny_spec(max_trials=2, top_k=2))
    drive(job_id)
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
    drive(job_id)
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
    drive(job_id)
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
    drive(job_id)
    job = get_job(job_id)
    assert job.status is JobStatus.FAILED
    assert job.error == "no trial completed (0 failed, 1 diverged)"
    assert job.best_trial_number is None and not get_artifacts(job_id)


def test_dispatch_respects_the_concurrency_cap(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPSEARCH_MAX_CONCURRENT_TRIALS_PER_JOB", "2")
    get_settings.cache_clear()
    job_id = create_job(tiny_spec(max_trials=5))
    first = dispatch(job_id)
    assert len(first) == 2
    assert dispatch(job_id) == []  # a duplicate dispatch adds nothing
    trials = get_trials(job_id)
    assert [(t.number, t.status) for t in trials] == [
        (0, TrialStatus.WAITING),
        (1, TrialStatus.WAITING),
    ]
    assert all(t.started_at is None and t.enqueued_at is not None for t in trials)
    job = get_job(job_id)
    assert job.status is JobStatus.RUNNING and job.max_trials == 5
    assert set(job.oracle_state["ongoing_trials"]) == {"trial-0", "trial-1"}


def test_several_jobs_share_the_queue_fairly(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only ``cap`` messages per job are queued: a FIFO queue interleaves the jobs."""
    monkeypatch.setenv("HPSEARCH_MAX_CONCURRENT_TRIALS_PER_JOB", "1")
    get_settings.cache_clear()
    spec = tiny_spec(max_trials=3)
    spec["training"]["epochs"] = 1
    a, b = create_job(spec), create_job(spec)
    queue = deque([*dispatch(a), *dispatch(b)])
    order = []
    while queue:
        trial_id = queue.popleft()
        with session_scope() as session:
            order.append(session.get_one(Trial, trial_id).job_id)
        queue.extend(run_trial(trial_id, "w"))
    assert order == [a, b] * 3
    assert get_job(a).status is get_job(b).status is JobStatus.SUCCEEDED


@pytest.mark.parametrize("db", ["sqlite_url", "postgres_url"])
def test_concurrent_dispatchers_never_hand_out_a_trial_twice(
    db: str, request: pytest.FixtureRequest
) -> None:
    request.getfixturevalue(db)
    job_id = create_job(tiny_spec(max_trials=50))
    results: list[list[int]] = []
    barrier = threading.Barrier(6)

    def dispatcher() -> None:
        barrier.wait()
        results.append(dispatch(job_id))

    threads = [threading.Thread(target=dispatcher) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sent = [i for r in results for i in r]
    trials = get_trials(job_id)
    cap = get_settings().max_concurrent_trials_per_job
    assert len(sent) == len(set(sent)) == len(trials) == cap
    assert [t.number for t in trials] == list(range(cap))
    assert len(get_job(job_id).oracle_state["start_order"]) == cap


def test_cancel_before_start(sqlite_url: str) -> None:
    job_id = create_job(tiny_spec(), cancel_requested=True)
    assert dispatch(job_id) == []
    job = get_job(job_id)
    assert job.status is JobStatus.CANCELLED and job.finished_at is not None
    assert get_trials(job_id) == []


def test_cancel_while_running(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    job_id = create_job(tiny_spec(max_trials=3))
    original = trial_store.record_epoch

    def cancel_after_first_epoch(*args: Any, **kwargs: Any) -> Any:
        with session_scope() as session:  # cancelled while the first epoch trained
            session.get_one(Job, job_id).cancel_requested = True
        return original(*args, **kwargs)

    monkeypatch.setattr(trial_store, "record_epoch", cancel_after_first_epoch)
    drive(job_id)  # all three were dispatched (cap 4): the last two messages find them cancelled
    job = get_job(job_id)
    first, *queued = get_trials(job_id)
    assert job.status is JobStatus.CANCELLED
    assert first.status is TrialStatus.CANCELLED and first.epochs_run == 1
    assert queued and all(
        t.status is TrialStatus.CANCELLED and t.started_at is None and t.epochs_run == 0
        for t in queued
    )
    # their messages, delivered late, run nothing; the job stays cancelled
    for t in queued:
        assert run_trial(t.id, "late-worker") == []
    assert dispatch(job_id) == []
    assert get_job(job_id).status is JobStatus.CANCELLED


def test_duplicate_delivery_does_nothing(sqlite_url: str) -> None:
    job_id = create_job(tiny_spec(max_trials=1))
    (trial_id,) = dispatch(job_id)
    assert trial_store.claim_trial(trial_id, "first-worker") is not None
    assert run_trial(trial_id, "second-worker") == []
    (trial,) = get_trials(job_id)
    assert trial.worker == "first-worker" and trial.attempts == 1
    assert trial.status is TrialStatus.RUNNING and trial.epochs_run == 0


class WorkerDied(BaseException):
    """Stands for a killed worker process: escapes attempt_trial's error handling."""


def _stale(trial_id: int) -> None:
    stale = datetime.now(UTC) - timedelta(seconds=get_settings().stale_after_s + 5)
    with session_scope() as session:
        session.get_one(Trial, trial_id).heartbeat_at = stale


def test_resume_after_a_crash(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HPSEARCH_MAX_CONCURRENT_TRIALS_PER_JOB", "1")
    get_settings.cache_clear()
    job_id = create_job(tiny_spec(max_trials=4))
    original = trial_store.record_epoch
    seen: set[int] = set()

    def die_in_third_trial(trial_id: int, *args: Any, **kwargs: Any) -> bool:
        recorded = original(trial_id, *args, **kwargs)
        seen.add(trial_id)
        if len(seen) == 3:
            raise WorkerDied
        return recorded

    monkeypatch.setattr(trial_store, "record_epoch", die_in_third_trial)
    with pytest.raises(WorkerDied):
        drive(job_id, worker="doomed")
    monkeypatch.setattr(trial_store, "record_epoch", original)

    before = get_trials(job_id)
    assert [t.status for t in before] == [TrialStatus.COMPLETED] * 2 + [TrialStatus.RUNNING]
    crashed = before[2]
    assert crashed.epochs_run == 1
    # The message redelivered while the lease is fresh does nothing...
    assert run_trial(crashed.id, "rescuer") == []
    assert recovery.requeue_lost_trials(get_settings().stale_after_s, {}) == []
    # ...once the heartbeat is stale, the reaper puts the trial back in the queue.
    _stale(crashed.id)
    assert recovery.requeue_lost_trials(get_settings().stale_after_s, {}) == [crashed.id]
    queue = deque([crashed.id])
    while queue:
        queue.extend(run_trial(queue.popleft(), "rescuer"))

    job = get_job(job_id)
    after = get_trials(job_id)
    assert job.status is JobStatus.SUCCEEDED
    assert [t.number for t in after] == [0, 1, 2, 3]
    assert all(t.status is TrialStatus.COMPLETED for t in after)
    assert after[2].hyperparameters == crashed.hyperparameters
    assert (after[2].attempts, after[2].worker) == (2, "rescuer")
    assert [(t.id, t.score) for t in after[:2]] == [(t.id, t.score) for t in before[:2]]
    assert after[2].epochs_run == 2
    epochs = [e.epoch for e in get_epochs(job_id) if e.trial_id == after[2].id]
    assert epochs == [0, 1]
    assert job.trials_completed == 4


def test_poison_trial_fails_after_max_attempts_and_the_job_goes_on(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPSEARCH_MAX_TRIAL_ATTEMPTS", "2")
    get_settings.cache_clear()
    job_id = create_job(tiny_spec(max_trials=3))
    first, *others = dispatch(job_id)
    with session_scope() as session:  # its worker died twice already
        session.get_one(Trial, first).attempts = 2
    queue = deque([*others, *run_trial(first, "w")])
    while queue:
        queue.extend(run_trial(queue.popleft(), "w"))
    job = get_job(job_id)
    poisoned = get_trials(job_id)[0]
    assert poisoned.status is TrialStatus.FAILED and poisoned.attempts == 3
    assert poisoned.failure_reason == (
        "its worker was lost 2 times while training this trial (max_trial_attempts=2)"
    )
    assert job.status is JobStatus.SUCCEEDED
    assert (job.trials_failed, job.trials_completed) == (1, 2)


def test_warm_shutdown_hands_the_trial_back(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = create_job(tiny_spec(max_trials=1))
    (trial_id,) = dispatch(job_id)
    original = trial_store.record_epoch

    def shutdown_after_first_epoch(*args: Any, **kwargs: Any) -> Any:
        assert trial_store.request_release("leaving:") == 1  # SIGTERM during the first epoch
        return original(*args, **kwargs)

    monkeypatch.setattr(trial_store, "record_epoch", shutdown_after_first_epoch)
    assert run_trial(trial_id, "leaving:1:2") == [trial_id]  # to be sent again at once
    monkeypatch.setattr(trial_store, "record_epoch", original)
    (trial,) = get_trials(job_id)
    assert trial.status is TrialStatus.WAITING and trial.attempts == 0
    assert trial.worker is None and trial.epochs_run == 0 and not get_epochs(job_id)
    assert run_trial(trial_id, "other:1:2") == []
    (trial,) = get_trials(job_id)
    assert trial.status is TrialStatus.COMPLETED and trial.attempts == 1
    assert get_job(job_id).status is JobStatus.SUCCEEDED


def test_unexpected_error_fails_the_job(sqlite_url: str) -> None:
    spec = tiny_spec()
    job_id = create_job(spec)
    with session_scope() as session:  # a stored spec that no longer validates
        session.get_one(Job, job_id).spec = {**spec, "bogus": 1}
    assert dispatch(job_id) == []
    job = get_job(job_id)
    assert job.status is JobStatus.FAILED and "ValidationError" in (job.error or "")


def test_time_limit_already_spent_fails_without_trials(sqlite_url: str) -> None:
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    job_id = create_job(tiny_spec(time_limit_s=60), started_at=long_ago)
    drive(job_id)
    job = get_job(job_id)
    assert job.status is JobStatus.FAILED and get_trials(job_id) == []
    assert (job.error or "").startswith("the time limit was reached before any trial completed")


def test_soft_time_limit_fails_the_trial_with_the_reason(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from celery.exceptions import SoftTimeLimitExceeded

    import worker.attempt

    calls = []

    def too_slow_once(claim: Any) -> list[int]:
        if not calls:
            calls.append(claim.id)
            raise SoftTimeLimitExceeded()
        return real(claim)

    real = worker.attempt._train_and_conclude
    monkeypatch.setattr(worker.attempt, "_train_and_conclude", too_slow_once)
    job_id = create_job(tiny_spec(max_trials=2))
    drive(job_id)
    job = get_job(job_id)
    slow, ok = get_trials(job_id)
    assert slow.status is TrialStatus.FAILED and "soft time limit" in (slow.failure_reason or "")
    assert ok.status is TrialStatus.COMPLETED and job.status is JobStatus.SUCCEEDED


def test_heartbeat_refreshes_the_lease_and_notices_losing_it(sqlite_url: str) -> None:
    import time

    from worker.lease import Heartbeat

    job_id = create_job(tiny_spec())
    trial_id = dispatch(job_id)[0]
    claim = trial_store.claim_trial(trial_id, "me")
    assert claim is not None
    first = get_trials(job_id)[0].heartbeat_at
    with Heartbeat(claim, 0.05) as beat:
        time.sleep(0.3)
        assert get_trials(job_id)[0].heartbeat_at > first
        with session_scope() as session:  # taken back, and claimed by another worker
            session.get_one(Trial, trial_id).lease = "someone-else"
        time.sleep(0.3)
        assert beat.lost


def test_an_explicit_layers_spec_runs_from_its_stored_form(sqlite_url: str) -> None:
    # The job row holds the spec as the API dumps it; the worker re-validates that dump.
    spec = tiny_spec()
    spec["model"] = {"layers": [8, 4], "activation": "selu", "kernel_initializer": "auto"}
    spec["search"]["max_trials"] = 1
    job_id = create_job(spec)
    assert "depth" not in get_job(job_id).spec["model"]
    drive(job_id)
    job = get_job(job_id)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert job.trials_completed == 1


def test_bayesian_random_start_counts_only_searched_hyperparameters() -> None:
    from search_spaces.schema import JobSpec
    from worker.training.oracle import build_oracle

    spec = tiny_spec(algorithm="bayesian", max_trials=20)
    # two searched values (depth, learning rate) among a dozen fixed ones
    spec["model"] = {"depth": {"type": "int", "min": 1, "max": 2}, "units": 8}
    spec["optimizer"] = {
        "name": "adam",
        "learning_rate": {"type": "float", "min": 1e-3, "max": 1e-2, "sampling": "log"},
    }
    oracle = build_oracle(JobSpec.model_validate(spec))
    assert oracle.num_initial_points == 5  # 3 x 2 searched, capped at a quarter of 20 trials
    spec["search"]["num_initial_points"] = 4
    assert build_oracle(JobSpec.model_validate(spec)).num_initial_points == 4  # type: ignore[attr-defined]
