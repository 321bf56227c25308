"""Hand out a job's trials, and close them: the search algorithm's state lives in the database.

Every step runs in ONE transaction holding the job's lock (``recorder.lock_job``: ``SELECT ...
FOR UPDATE`` on PostgreSQL, the writer lock on SQLite): load the Keras Tuner oracle from
``jobs.oracle_state``, change it, save it back together with the trial rows. So two workers
never get the same trial, and a Bayesian proposal sees every trial finished before it.

``dispatch`` creates WAITING trials while the job has fewer than
``max_concurrent_trials_per_job`` active (waiting + running) ones; the caller sends one
run-trial message per new trial AFTER the commit (a message lost in between is re-sent by the
reaper). Only ``cap`` messages per job are ever in the queue, so several jobs interleave fairly
on a FIFO queue. The oracle says STOPPED (done) or IDLE (Hyperband waiting for a round to end):
no more trials for now; the job ends once nothing of it is active.

Each trial gets its own Keras Tuner ``tuner_id`` (``trial-<number>``), so the oracle tracks
every in-flight trial as ongoing (Bayesian hallucinates their results, Hyperband waits for
them). A trial re-run after a crash keeps its row (number, hyperparameters): the oracle only
hears of it again at ``end_trial``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from sqlalchemy.orm import Session

from db.engine import session_scope
from db.models import Job, JobStatus, Trial, TrialStatus
from db.settings import get_settings
from search_spaces.schema import JobSpec
from worker.specs import parse_spec
from worker.tuning import recorder

log = logging.getLogger(__name__)


def dispatch(job_id: str) -> list[int]:
    """Create the job's next trials (or end it); returns the new trial ids, to be sent."""
    try:
        with session_scope() as session:
            job = recorder.lock_job(session, job_id)
            if job is None:
                return []
            return dispatch_locked(session, job)
    except Exception as exc:  # a stored spec that no longer validates, an oracle bug...
        log.exception("dispatching job %s failed", job_id)
        recorder.fail_job(job_id, f"{type(exc).__name__}: {exc}")
        return []


def dispatch_locked(session: Session, job: Job, oracle: Any = None) -> list[int]:
    """``dispatch`` inside a transaction that already holds the job's lock."""
    if recorder.settle_job(session, job):
        return []
    from worker.tuning.oracle import build_oracle, planned_trials

    spec = parse_spec(job.spec, session)
    now = recorder.utcnow()
    if job.status is JobStatus.QUEUED:
        job.status = JobStatus.RUNNING
        job.started_at = job.started_at or now
        job.max_trials = planned_trials(spec)
    job.heartbeat_at = now  # the last dispatch: the reaper re-sends jobs silent for too long
    cap = get_settings().max_concurrent_trials_per_job
    active = recorder.active_trials(session, job.id)
    if active >= cap:
        return []
    if oracle is None:
        oracle = build_oracle(spec)
        if job.oracle_state:
            oracle.set_db_state(job.oracle_state)
    new: list[Trial] = []
    while active < cap:
        kt_trial = oracle.create_trial(f"trial-{len(oracle.trials)}")
        if kt_trial.status == "RUNNING":
            trial = Trial(
                job_id=job.id,
                number=int(kt_trial.trial_id),
                status=TrialStatus.WAITING,
                hyperparameters=recorder.json_safe(kt_trial.hyperparameters.values),
                started_at=None,
                enqueued_at=now,
                attempts=0,
                epochs_run=0,
            )
            session.add(trial)
            new.append(trial)
            active += 1
            continue
        # STOPPED: the search is done; IDLE: it waits for active trials (Hyperband rounds).
        if active == 0:
            if kt_trial.status != "STOPPED":
                log.warning("job %s: oracle idle with no active trial; ending it", job.id)
            recorder.end_search(session, job)
        break
    job.oracle_state = oracle.get_db_state()
    session.flush()
    return [t.id for t in new]


def conclude(trial_id: int, worker: str, result: recorder.TrialResult) -> list[int]:
    """Close a trial this worker holds and dispatch the job's next ones, in one transaction
    under the job lock. Returns the trial ids to send; nothing if the lease was lost (another
    worker re-runs the trial: its result wins)."""
    with session_scope() as session:
        trial = session.get(Trial, trial_id, populate_existing=True)
        if trial is None:
            return []
        job = recorder.lock_job(session, trial.job_id)
        session.refresh(trial)
        if job is None or trial.status is not TrialStatus.RUNNING or trial.worker != worker:
            log.warning("trial %s: lease lost before its result was recorded", trial_id)
            return []
        spec = parse_spec(job.spec, session)
        oracle = None
        if result.status in (TrialStatus.COMPLETED, TrialStatus.DIVERGED, TrialStatus.FAILED):
            oracle = _end_in_oracle(job, spec, trial.number, result)
            job.oracle_state = oracle.get_db_state()
        recorder.close_trial(session, job, trial, result, top_k=spec.search.top_k)
        return dispatch_locked(session, job, oracle)


def _end_in_oracle(job: Job, spec: JobSpec, number: int, result: recorder.TrialResult) -> Any:
    from worker.tuning.oracle import build_oracle

    oracle = build_oracle(spec)
    oracle.set_db_state(job.oracle_state or {})
    kt_id = next((tid for tid in oracle.trials if int(tid) == number), None)
    if kt_id is None:  # pragma: no cover - every trial row was created from the oracle
        log.error("job %s: trial %s unknown to the oracle", job.id, number)
        return oracle
    kt_trial = oracle.trials[kt_id]
    completed = (
        result.status is TrialStatus.COMPLETED
        and result.score is not None
        and math.isfinite(result.score)
    )
    if completed:
        oracle.update_trial(kt_id, {spec.objective: result.score}, step=result.best_epoch or 0)
        kt_trial.status = "COMPLETED"
    else:
        kt_trial.status = "FAILED"
        kt_trial.message = result.failure_reason
    oracle.end_trial(kt_trial)
    return oracle
