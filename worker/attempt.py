"""One attempt at one trial, from claim to conclusion: the module that owns a trial's life.

claim (a compare-and-set that hands out a lease) -> train (``worker.training``, in this pool
process) -> conclude (``dispatcher.conclude``: the result,
written only under the lease, and the job's next trials).

A heartbeat keeps the lease from the claim until the result is written. A duplicate delivery, or
two workers racing for one message, runs the trial once: the claim is a compare-and-set. ``attempts`` counts the claims that ended with the worker lost: past
``max_trial_attempts`` the trial is failed instead (a poison trial that kills its worker every
time) and the job goes on. Between epochs the trial records the epoch and reads its control
flags: job cancelled (stop, the job ends cancelled), lease lost (stop, record nothing), worker
shutting down (stop, back to the queue at once).

A database that blinks pauses the trial (every step is retried, ``db.transient``); one that stays
away past ``db_retry_budget_s`` ends the attempt without a verdict: the trial is handed back to
the queue, not counted, and runs again once the database is back.

Time limit (``search.time_limit_s``, counted from the job's first dispatch): checked by the
dispatcher and between epochs. When it is reached the trials in flight are recorded as
``cancelled`` (their ``failure_reason`` says why) and the job ends ``succeeded`` with the trials
it completed (``error`` stays null), or ``failed`` if none completed.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from celery.exceptions import SoftTimeLimitExceeded

from db.models import TrialStatus
from db.repositories import artifacts, jobs, trials
from db.repositories.jobs import JobSnapshot
from db.repositories.trials import ClaimedTrial, Control, TrialResult
from db.settings import get_settings
from db.transient import DatabaseUnavailableError
from search_spaces.training_spec import models_kept
from worker.dispatcher import conclude
from worker.lease import Heartbeat, hand_back

if TYPE_CHECKING:
    from search_spaces.schema import JobSpec
    from worker.pruning import TrialPruner
    from worker.training.fit import EpochReport, Halt
    from worker.training.run import SearchContext

log = logging.getLogger(__name__)

#: TEST HOOK, never set in a deployment: a worker process exits abruptly (``os._exit``) when it
#: starts training the trial with this number, like a trial that crashes its worker every time.
#: Only the worker's own environment can set it; nothing a client sends reaches it.
POISON_TRIAL_ENV = "HPSEARCH_TEST_POISON_TRIAL"


def worker_name() -> str:
    """``host:main_pid:child_pid``: which machine, which Celery worker, which pool process."""
    return f"{socket.gethostname()}:{os.getppid()}:{os.getpid()}"


def attempt_trial(trial_id: int, worker: str | None = None) -> list[int]:
    """Claim trial ``trial_id``, train it, record it and dispatch the job's next trials.

    Returns the ids of trials to send to the queue (new ones, or this one handed back). A no-op
    (``[]``) if the trial is not waiting: duplicate delivery.
    """
    worker = worker or worker_name()
    try:
        claim = trials.claim_trial(trial_id, worker)
    except DatabaseUnavailableError as error:
        log.warning("trial id %s not claimed: %s; sending it again", trial_id, error)
        return [trial_id]
    if claim is None:
        # not ours: no number to give without a query (the id is the database's, not the job's)
        log.info("trial id %s not claimed (taken, final, or a duplicate message)", trial_id)
        return []
    # The lease is kept for the whole attempt: loading the data, training, writing the result.
    with Heartbeat(claim, get_settings().heartbeat_interval_s):
        return _run_claimed(claim)


def _run_claimed(claim: ClaimedTrial) -> list[int]:
    limit = get_settings().max_trial_attempts
    if claim.attempts > limit:
        lost = claim.attempts - 1
        reason = (
            f"its worker was lost {lost} times while training this trial "
            f"(max_trial_attempts={limit})"
        ) + (f"; {claim.lost_before}" if claim.lost_before else "")
        log.warning("trial %s of job %s failed: %s", claim.number, claim.job_id, reason)
        return _conclude(claim, TrialResult(TrialStatus.FAILED, failure_reason=reason))
    try:
        return _train_and_conclude(claim)
    except SoftTimeLimitExceeded:
        seconds = get_settings().trial_soft_time_limit_s
        reason = f"stopped by the worker's soft time limit ({seconds} s per trial)"
        return _conclude(claim, TrialResult(TrialStatus.FAILED, failure_reason=reason))
    except DatabaseUnavailableError as error:
        log.warning("trial %s of job %s: %s; handing it back", claim.number, claim.job_id, error)
        return hand_back(claim)
    except Exception as exc:  # our own bug or a dataset that cannot load: fail the trial
        log.exception("trial %s of job %s failed", claim.number, claim.job_id)
        reason = f"{type(exc).__name__}: {exc}"[:2000]
        return _conclude(claim, TrialResult(TrialStatus.FAILED, failure_reason=reason))


def _conclude(claim: ClaimedTrial, result: TrialResult) -> list[int]:
    """``dispatcher.conclude``; the trial goes back to the queue if the database is away."""
    try:
        sent = conclude(claim, result)
    except DatabaseUnavailableError as error:
        log.warning(
            "job %s trial %s: result not recorded (%s); handing it back",
            claim.job_id,
            claim.number,
            error,
        )
        return hand_back(claim)
    log.info("job %s trial %s %s", claim.job_id, claim.number, describe_result(result))
    return sent


def describe_result(result: TrialResult) -> str:
    """What a log line says of a trial's end: its outcome, score, epochs and duration."""
    words = [result.status.value]
    if result.score is not None:
        words.append(f"score {result.score:.6g}")
    if result.best_epoch is not None:
        words.append(f"(best epoch {result.best_epoch})")
    if result.duration_s is not None:
        words.append(f"in {result.duration_s:.1f} s")
    if result.failure_reason:
        words.append(f"- {result.failure_reason[:300]}")
    return " ".join(words)


def _train_and_conclude(claim: ClaimedTrial) -> list[int]:
    job = jobs.load_job(claim.job_id)
    if job.status.is_final or job.cancel_requested:
        reason = "job cancelled" if job.cancel_requested else f"job {job.status.value}"
        return _conclude(claim, TrialResult(TrialStatus.CANCELLED, failure_reason=reason))
    if os.environ.get(POISON_TRIAL_ENV) == str(claim.number):  # test hook, see above
        log.error("test hook %s: exiting abruptly in trial %s", POISON_TRIAL_ENV, claim.number)
        os._exit(1)

    # TensorFlow is imported here, in the pool process, never in the Celery parent.
    from worker.training.fit import Stop
    from worker.training.run import (
        confirm_trial,
        context_for,
        release_memory,
        study_trial,
        train,
    )

    ctx = context_for(job.id, job.spec)
    values = claim.hyperparameters
    if job.dataset_info is None:
        data = ctx.data
        split = jobs.SplitRows(
            data.info["rows_total"], data.train_rows.tobytes(), data.validation_rows.tobytes()
        )
        jobs.record_dataset_info(job.id, data.info, split)
    deadline = _deadline(ctx, job)
    if deadline is not None and time.monotonic() > deadline:
        reason = "the job's time limit was reached before this trial started"
        return _conclude(claim, TrialResult(TrialStatus.CANCELLED, failure_reason=reason))
    direction, kept = ctx.spec.direction, models_kept(job.spec.get("search") or {}, confirming=True)
    try:
        if ctx.spec.study is not None:
            ctx, values = study_trial(ctx, job.spec, values)
        elif claim.confirm_seed is not None:
            ctx = confirm_trial(ctx, job.spec, claim.confirm_seed)
        trained = train(
            ctx,
            claim.number,
            values,
            on_epoch=_epoch_hook(claim, deadline, _pruner(ctx.spec, claim, values)),
            load_checkpoint=lambda number: artifacts.load_checkpoint(job.id, number),
            wants_model=lambda score: artifacts.qualifies_for_top_k(job.id, score, direction, kept),
        )
        for note in trained.notes:
            log.warning("job %s trial %s: %s", job.id, claim.number, note)
        if trained.stop is Stop.LEASE_LOST:
            return []
        if trained.stop in (Stop.RELEASED, Stop.DATABASE_AWAY):
            return hand_back(claim)
        return _conclude(claim, trained.result)
    finally:
        release_memory()


def _pruner(spec: JobSpec, claim: ClaimedTrial, values: dict[str, Any]) -> TrialPruner | None:
    """The job's pruner for this trial; none for a confirmation run (its configuration was
    judged already)."""
    if claim.confirm_seed is not None:
        return None
    from worker.pruning import trial_pruner

    return trial_pruner(claim.job_id, spec, claim.number, values)


def _epoch_hook(  # type: ignore[no-untyped-def]
    claim: ClaimedTrial, deadline: float | None, pruner: TrialPruner | None = None
):
    """Record each epoch under the lease, and read what the trial should do next (one
    transaction); then ask the job's pruner, if it has one."""
    from worker.training.fit import Halt, Stop

    lost = Halt(Stop.LEASE_LOST, "the trial was taken back from this worker")

    def on_epoch(report: EpochReport) -> Halt | None:
        try:
            control = trials.record_epoch(
                claim.id,
                claim.lease,
                report.execution,
                report.epoch,
                report.metrics,
                report.learning_rate,
                report.duration_s,
                report.health,
            )
        except DatabaseUnavailableError as error:
            return Halt(Stop.DATABASE_AWAY, str(error))
        if control is Control.LEASE_LOST:
            return lost
        if control is Control.CANCEL:
            return Halt(Stop.CANCELLED, "job cancelled")
        if control is Control.RELEASE:
            return Halt(Stop.RELEASED, "the worker is shutting down; the trial was re-queued")
        if deadline is not None and time.monotonic() > deadline:
            return Halt(Stop.TIME_LIMIT, "the job's time limit was reached during this trial")
        if pruner is None:
            return None
        try:
            pruned = pruner.judge(report.execution, report.epoch, report.metrics)
        except DatabaseUnavailableError as error:
            return Halt(Stop.DATABASE_AWAY, str(error))
        except Exception:  # a pruner's bug never fails the trial: it trains on
            log.warning("trial %s: pruner failed", claim.number, exc_info=True)
            return None
        if pruned is None:
            return None
        return Halt(Stop.PRUNED, pruned.reason, pruned.epoch, pruned.against)

    return on_epoch


def _deadline(ctx: SearchContext, job: JobSnapshot) -> float | None:
    """The job's time limit as a ``time.monotonic()`` value."""
    limit = ctx.spec.search.time_limit_s
    if limit is None:
        return None
    started = job.started_at
    elapsed = (datetime.now(UTC) - started).total_seconds() if started else 0.0
    return time.monotonic() + limit - max(0.0, elapsed)


__all__ = ["POISON_TRIAL_ENV", "attempt_trial", "worker_name"]
