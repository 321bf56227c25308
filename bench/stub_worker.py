"""The benchmark's stub trainer: a Celery app with the service's own tasks, claim, lease,
heartbeat, epoch record, result, dispatch and reaper, where a trial sleeps ``TRIAL_S`` instead of
fitting a model (bench/control_plane.py). Run as ``celery -A bench.stub_worker:app worker``.

This is the benchmark's code, never the product's: it replaces ``worker.attempt``'s training
step in the worker's processes, and writes what each step cost to a JSON-lines file per process
(``HPSEARCH_BENCH_TIMINGS_DIR``), so the benchmark can say where the time goes.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from pathlib import Path
from typing import Any

import worker.attempt
import worker.dispatcher
from db.models import TrialStatus
from db.repositories import jobs, trials
from db.repositories.trials import ClaimedTrial, TrialResult
from worker.celery_app import app

__all__ = ["app"]

#: how long a stub trial "trains".
TRIAL_S = float(os.environ.get("HPSEARCH_BENCH_TRIAL_S", "0.5"))
#: epochs a stub trial records, one every ``TRIAL_S / EPOCHS`` seconds (bench/dashboard_viewers.py
#: wants running jobs whose pages change as real ones do).
EPOCHS = int(os.environ.get("HPSEARCH_BENCH_EPOCHS", "1"))
_timings: Any = None


def _record(**fields: float | int | str) -> None:
    global _timings
    if _timings is None:
        folder = Path(os.environ["HPSEARCH_BENCH_TIMINGS_DIR"])
        _timings = (folder / f"{os.getpid()}.jsonl").open("a", buffering=1)
    _timings.write(json.dumps(fields) + "\n")


def _score(values: dict[str, Any]) -> float:
    """A made-up objective, the same for the same values."""
    return (zlib.crc32(json.dumps(values, sort_keys=True).encode()) % 10_000) / 10_000


def _stub_train_and_conclude(claim: ClaimedTrial) -> list[int]:
    started = time.perf_counter()
    jobs.load_job(claim.job_id)
    loaded = time.perf_counter()
    score = _score(claim.hyperparameters)
    if EPOCHS == 1:
        time.sleep(TRIAL_S)  # the attempt's heartbeat keeps the lease meanwhile
        trials.record_epoch(claim.id, claim.lease, 0, 0, {"val_accuracy": score}, None, TRIAL_S)
    else:
        _stub_epochs(claim, score)
    trained = time.perf_counter()
    result = TrialResult(
        TrialStatus.COMPLETED,
        score=score,
        best_epoch=EPOCHS - 1,
        metrics={"val_accuracy": score},
        duration_s=TRIAL_S,
        fit_duration_s=TRIAL_S,
    )
    sent = worker.attempt._conclude(claim, result)
    _record(
        trial=claim.number,
        start=started,
        load_s=loaded - started,
        record_s=trained - loaded - TRIAL_S,
        conclude_s=time.perf_counter() - trained,
        end=time.perf_counter(),
    )
    return sent


def _stub_epochs(claim: ClaimedTrial, score: float) -> None:
    """``EPOCHS`` epochs of learning-curve-like metrics rising to ``score``, each recorded after
    its share of ``TRIAL_S``; stops early if the trial is no longer ours to run."""
    epoch_s = TRIAL_S / EPOCHS
    for epoch in range(EPOCHS):
        time.sleep(epoch_s)
        reached = score * (1 - 0.5 ** (epoch + 1)) / (1 - 0.5**EPOCHS)  # ends at score
        metrics = {
            "loss": 2.3 * (1 - reached) + 0.05,
            "accuracy": min(1.0, reached + 0.01 * epoch),
            "val_loss": 2.3 * (1 - reached) + 0.08,
            "val_accuracy": reached,
        }
        control = trials.record_epoch(claim.id, claim.lease, 0, epoch, metrics, None, epoch_s)
        if control is not trials.Control.GO_ON:
            return


_real_lock_job = jobs.lock_job


def _timed_lock_job(session: Any, job_id: str, **kwargs: Any) -> Any:
    started = time.perf_counter()
    try:
        return _real_lock_job(session, job_id, **kwargs)
    finally:
        _record(lock_wait_s=time.perf_counter() - started, at=started)


_real_claim = worker.attempt.trials.claim_trial


def _timed_claim(trial_id: int, worker_name: str) -> Any:
    started = time.perf_counter()
    try:
        return _real_claim(trial_id, worker_name)
    finally:
        _record(claim_s=time.perf_counter() - started, claim_at=started)


worker.attempt._train_and_conclude = _stub_train_and_conclude
worker.dispatcher.jobs.lock_job = _timed_lock_job  # type: ignore[attr-defined]
worker.attempt.trials.claim_trial = _timed_claim  # type: ignore[attr-defined]
