"""Run one trial of a job: claim it, train it, record it, dispatch the job's next trials.

A trial is claimed by a compare-and-set on its row (WAITING -> RUNNING, with this worker's name
and a heartbeat), so a duplicate delivery, or two workers racing for one message, runs it once.
A heartbeat thread keeps the lease while the trial trains; a worker that dies stops beating, and
the reaper (``worker.reaper``) puts the trial back to WAITING: it is re-run with the same number
and hyperparameters. ``attempts`` counts the claims: past ``max_trial_attempts`` the trial is
marked failed instead (a poison trial that kills its worker every time) and the job goes on.

Between epochs the trial reads its control flags: job cancelled (stop, the job ends cancelled),
lease lost (stop, record nothing), worker shutting down (stop, back to the queue at once).

Time limit (``search.time_limit_s``, counted from the job's first dispatch): checked by the
dispatcher and between epochs. When it is reached the trials in flight are recorded as
``cancelled`` (their ``failure_reason`` says why) and the job ends ``succeeded`` with the trials
it completed (``error`` stays null), or ``failed`` if none completed.
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import threading
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from celery.exceptions import SoftTimeLimitExceeded

from db.models import TrialStatus
from db.settings import get_settings
from search_spaces.schema import JobSpec
from worker.scheduler import conclude, dispatch
from worker.specs import parse_spec
from worker.tuning import recorder
from worker.tuning.recorder import TrialResult

if TYPE_CHECKING:
    from worker.tuning.trial_runner import SearchContext, TrialOutcome

log = logging.getLogger(__name__)

#: TEST HOOK, never set in a deployment: a worker process exits abruptly (``os._exit``) when it
#: starts training the trial with this number, like a trial that crashes its worker every time.
#: Only the worker's own environment can set it; nothing a client sends reaches it.
POISON_TRIAL_ENV = "HPSEARCH_TEST_POISON_TRIAL"


def worker_name() -> str:
    """``host:main_pid:child_pid``: which machine, which Celery worker, which pool process."""
    return f"{socket.gethostname()}:{os.getppid()}:{os.getpid()}"


class Heartbeat:
    """A daemon thread that renews a trial's lease (``trials.heartbeat_at``) every interval."""

    def __init__(self, trial_id: int, worker: str, interval_s: float) -> None:
        self.trial_id, self.worker, self.interval_s = trial_id, worker, interval_s
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{trial_id}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                if not recorder.heartbeat(self.trial_id, self.worker):
                    self.lost = True
                    return
            except Exception:  # the DB blinked: try again next beat
                log.warning("heartbeat of trial %s failed", self.trial_id, exc_info=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def run_trial(trial_id: int, worker: str | None = None) -> list[int]:
    """Claim trial ``trial_id``, train it, record it and dispatch the job's next trials.

    Returns the ids of trials to send to the queue (new ones, or this one handed back by a
    warm shutdown). A no-op (``[]``) if the trial is not waiting: duplicate delivery.
    """
    settings = get_settings()
    worker = worker or worker_name()
    claim = recorder.claim_trial(trial_id, worker)
    if claim is None:
        log.info("trial %s not claimed (taken, final, or a duplicate message)", trial_id)
        return []
    if claim.attempts > settings.max_trial_attempts:
        died = claim.attempts - 1
        reason = (
            f"the worker died {died} times while training this trial "
            f"(max_trial_attempts={settings.max_trial_attempts})"
        )
        log.warning("trial %s of job %s: %s", claim.number, claim.job_id, reason)
        return conclude(trial_id, worker, TrialResult(TrialStatus.FAILED, failure_reason=reason))
    try:
        return _train_and_record(claim, worker)
    except SoftTimeLimitExceeded:
        limit = settings.trial_soft_time_limit_s
        return conclude(
            trial_id,
            worker,
            TrialResult(
                TrialStatus.FAILED,
                failure_reason=f"stopped by the worker's soft time limit ({limit} s per trial)",
            ),
        )
    except Exception as exc:  # our own bug or a dataset that cannot load: fail the trial
        log.exception("trial %s of job %s failed", claim.number, claim.job_id)
        return conclude(
            trial_id,
            worker,
            TrialResult(TrialStatus.FAILED, failure_reason=f"{type(exc).__name__}: {exc}"[:2000]),
        )


def _train_and_record(claim: recorder.ClaimedTrial, worker: str) -> list[int]:
    job = recorder.load_job(claim.job_id)
    if job.status.is_final or job.cancel_requested:
        reason = "job cancelled" if job.cancel_requested else f"job {job.status.value}"
        return conclude(claim.id, worker, TrialResult(TrialStatus.CANCELLED, failure_reason=reason))
    if os.environ.get(POISON_TRIAL_ENV) == str(claim.number):  # test hook, see above
        log.error("test hook %s: exiting abruptly in trial %s", POISON_TRIAL_ENV, claim.number)
        os._exit(1)

    # TensorFlow is imported here, in the worker child, never in the Celery parent.
    from worker.tuning.trial_runner import Stop, TrialRun
    from worker.tuning.trial_runner import run_trial as train

    ctx = _context(job.id, job.spec)
    if job.dataset_info is None:
        recorder.record_dataset_info(job.id, ctx.data.info)
    run = TrialRun(
        ctx=ctx,
        trial_id=claim.id,
        number=claim.number,
        worker=worker,
        deadline=_deadline(ctx.spec, job.started_at),
    )
    if run.deadline is not None and time.monotonic() > run.deadline:
        return conclude(
            claim.id,
            worker,
            TrialResult(
                TrialStatus.CANCELLED,
                failure_reason="the job's time limit was reached before this trial started",
            ),
        )
    settings = get_settings()
    with Heartbeat(claim.id, worker, settings.heartbeat_interval_s):
        outcome = train(run, _hyperparameters(ctx.spec, claim.hyperparameters))
    for note in outcome.notes:
        log.warning("job %s trial %s: %s", job.id, claim.number, note)
    try:
        if outcome.stop is Stop.LEASE_LOST:
            return []
        if outcome.stop is Stop.RELEASED:
            return [claim.id] if recorder.release_trial(claim.id, worker) else []
        return conclude(claim.id, worker, _result(ctx, outcome))
    finally:
        outcome.model = None
        _release_memory()


def _result(ctx: SearchContext, outcome: TrialOutcome) -> TrialResult:
    """The outcome as recorded: a time-limit stop is a cancelled trial; a completed one
    carries its model (if it may enter the top-k) and, for Hyperband, its weights."""
    from worker.tuning.artifacts import model_payload, signature
    from worker.tuning.trial_runner import Stop, checkpoint_bytes

    spec = ctx.spec
    status = outcome.status
    if outcome.stop in (Stop.CANCELLED, Stop.TIME_LIMIT):
        status = TrialStatus.CANCELLED
    result = TrialResult(
        status=status,
        score=outcome.score,
        best_epoch=outcome.best_epoch,
        metrics=outcome.metrics,
        parameter_count=outcome.parameter_count,
        failure_reason=outcome.failure_reason,
        duration_s=outcome.duration_s,
        fit_duration_s=outcome.fit_duration_s,
    )
    if status is TrialStatus.COMPLETED and outcome.model is not None:
        score = float(outcome.score or 0.0)
        if recorder.qualifies_for_top_k(ctx.job_id, score, spec.direction, spec.search.top_k):
            result.artifact = model_payload(outcome.model, signature(spec, ctx.data, score))
        if spec.search.algorithm == "hyperband" and not spec.is_single_configuration:
            result.checkpoint = checkpoint_bytes(outcome.model)
    return result


def _deadline(spec: JobSpec, started_at: datetime | None) -> float | None:
    """The job's time limit as a ``time.monotonic()`` value."""
    if spec.search.time_limit_s is None:
        return None
    elapsed = (datetime.now(UTC) - started_at).total_seconds() if started_at else 0.0
    return time.monotonic() + spec.search.time_limit_s - max(0.0, elapsed)


def _hyperparameters(spec: JobSpec, values: dict[str, Any]) -> Any:
    """A Keras Tuner ``HyperParameters`` holding the trial's stored values."""
    from search_spaces.hyperparameters import build_hyperparameters

    hp = build_hyperparameters(spec).copy()
    hp.values = dict(values)
    return hp


#: per worker process: the loaded dataset and hypermodel of the last few jobs.
_CONTEXTS: OrderedDict[str, SearchContext] = OrderedDict()
_CONTEXTS_KEPT = 2


def _context(job_id: str, spec_json: dict[str, Any]) -> SearchContext:
    if job_id in _CONTEXTS:
        _CONTEXTS.move_to_end(job_id)
        return _CONTEXTS[job_id]
    import search_spaces.keras_objects  # noqa: F401  (registers custom layers for save/load)
    from search_spaces.builder import SpecHyperModel
    from worker.datasets import load_dataset
    from worker.tuning.trial_runner import SearchContext

    spec = parse_spec(spec_json)
    data = load_dataset(spec.dataset)
    ctx = SearchContext(
        job_id=job_id,
        spec=spec,
        data=data,
        hypermodel=SpecHyperModel.for_training_split(spec, data.x_train),
    )
    _CONTEXTS[job_id] = ctx
    while len(_CONTEXTS) > _CONTEXTS_KEPT:
        _CONTEXTS.popitem(last=False)
    return ctx


#: a full ``gc.collect()`` every this many trials (see ``_release_memory``).
GC_EVERY_TRIALS = 10
_trials_run = 0


def _release_memory() -> None:
    """Reset Keras's global state after a trial, and collect garbage every few trials.

    Measured (digits, 40 small trials, 2 cores): ``clear_session(free_memory=True)`` costs
    0.16 s at the first trial and 0.40 s by the 40th (gc walks ever more objects), and saves
    only ~1 MB/trial over ``clear_session(free_memory=False)`` (~3 ms). Resident memory grows
    ~5-6 MB/trial either way (TensorFlow keeps each trial's traced FuncGraphs), which only
    recycling the worker process frees (``worker_max_tasks_per_child``, counted in trials).
    """
    import keras

    global _trials_run
    _trials_run += 1
    keras.backend.clear_session(free_memory=False)
    if _trials_run == 1:
        # After the first trial the process holds TensorFlow's and Keras's ~400,000 long-lived
        # objects; freezing them keeps every later full collection from walking them again
        # (measured: 150-240 ms -> 50-80 ms a collection).
        gc.collect()
        gc.freeze()
    elif _trials_run % GC_EVERY_TRIALS == 0:
        gc.collect()


__all__ = ["POISON_TRIAL_ENV", "dispatch", "run_trial", "worker_name"]
