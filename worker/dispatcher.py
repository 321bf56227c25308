"""Hand out a job's trials, and fold their results into its search: the search algorithm's state
lives in the database.

A trial's result is written by its worker under the trial's lease, without the job's lock
(``conclude``). Folding results into the search and proposing the next trials is ONE transaction
that holds the job's search (``search_hold.hold_search``: an advisory lock on PostgreSQL, kept
alive while the algorithm computes) and its row (``jobs.lock_job``): restore the search algorithm from the job's stored state, tell it every
result it has not learnt yet, let it propose, store it back with the new trial rows. So two
workers never get the same trial, and a Bayesian proposal sees every trial that ended before it.

Whoever finds the search taken does not wait: the holder folds its result in too, because after
each commit the holder looks again for results it has not folded (a result is committed before
its worker tries the lock, so the holder's next look sees it). Under load one fold takes many
results at once, and no worker queues behind the job's lock. After ``FOLD_ROUNDS`` rounds a
holder leaves what keeps arriving to a dispatch message; the reaper sends one too for a job whose
results wait unfolded (a safety net).

``dispatch`` creates waiting trials while the job has fewer than ``max_concurrent_trials_per_job``
active (waiting + running) ones; the caller sends one run-trial message per new trial AFTER the
commit (a message lost in between is re-sent by the reaper). Only ``cap`` messages per job are
ever in the queue, so several jobs interleave fairly on a FIFO queue. When the algorithm has
nothing left (done) or nothing for now (Hyperband waits for a round to end), no trial is created;
the job ends once nothing of it is active. Every step that meets a transient database error is run
again from its start (``db.transient``).

The search algorithm (``worker.training.oracle.SearchAlgorithm``: Keras Tuner's oracles, TPE, a
study's plan) is imported lazily: it needs Keras Tuner, which only pool processes load.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from db.engine import session_scope
from db.models import Job, StopCause, Trial, TrialStatus
from db.repositories import artifacts, confirm, jobs, search, trials
from db.repositories.search_hold import hold_search
from db.repositories.trials import ClaimedTrial, TrialResult
from db.settings import get_settings
from db.transient import DatabaseUnavailableError, run_retried
from db.values import utcnow
from search_spaces.schema import JobSpec
from search_spaces.training_spec import models_kept
from worker import folding
from worker.specs import parse_spec

if TYPE_CHECKING:
    from worker.training.oracle import SearchAlgorithm

log = logging.getLogger(__name__)

#: rounds a worker folds results that keep arriving before it leaves them to a dispatch message.
FOLD_ROUNDS = 3


def dispatch(job_id: str) -> list[int]:
    """Fold the job's new results into its search and create its next trials (or end it);
    returns the new trial ids, to be sent.

    A database that stays away past the retry budget leaves the job as it is (the reaper sends
    it again); anything else wrong with the job (a stored spec that no longer validates, an
    algorithm's bug) fails it."""
    try:
        return _fold(job_id)
    except DatabaseUnavailableError as error:
        log.warning("job %s not dispatched: %s; the reaper will send it again", job_id, error)
        return []
    except Exception as exc:
        log.exception("dispatching job %s failed", job_id)
        try:
            jobs.fail_job(job_id, f"{type(exc).__name__}: {exc}")
        except DatabaseUnavailableError:
            log.warning("job %s could not be marked failed: the database is away", job_id)
        return []


def _fold(job_id: str) -> list[int]:
    sent: list[int] = []
    for _ in range(FOLD_ROUNDS):
        new, folded = run_retried("fold results into a job's search", _fold_once, job_id)
        sent += new
        if folded is None or not search.has_unreported(job_id):
            return sent
    from worker.messages import send_dispatch

    send_dispatch(job_id)  # results keep arriving: whoever takes the message folds the rest
    return sent


def _fold_once(job_id: str) -> tuple[list[int], int | None]:
    """One fold under the job's search and row locks: the new trial ids, and how many results
    were folded (None: another session holds the search and folds them)."""
    step_timeout_s = get_settings().search_step_timeout_s
    with session_scope() as session, hold_search(session, job_id, step_timeout_s) as held:
        if not held:
            return [], None
        job = jobs.lock_job(session, job_id, with_search_state=True)
        if job is None:
            return [], 0
        ended = search.unreported(session, job_id)
        # a confirmation run re-runs a configuration the search already learnt from
        informing = [t for t in ended if t.status.informs_search and t.confirms is None]
        algorithm, spec = None, None
        if informing and not job.status.is_final:
            spec = parse_spec(job.spec, session)
            algorithm = _search(session, job, spec)
            for t in informing:
                pruned = t.status is TrialStatus.PRUNED
                algorithm.report(t.number, t.score, t.best_epoch or 0, t.failure_reason, pruned)
        search.mark_reported(session, [t.id for t in ended])
        jobs.count_results(job, ended)
        return dispatch_locked(session, job, algorithm, spec), len(ended)


def dispatch_locked(
    session: Session,
    job: Job,
    algorithm: SearchAlgorithm | None = None,
    spec: JobSpec | None = None,
) -> list[int]:
    """``dispatch`` inside a transaction that already holds the job's lock. ``search`` and
    ``spec``: the job's, if the caller has them already (its state is stored here, once)."""
    new = []
    if not jobs.settle_job(session, job):
        from worker.training.oracle import planned_trials

        spec = spec or parse_spec(job.spec, session)
        now = utcnow()
        jobs.mark_dispatched(job, planned_trials(spec), now)
        cap = get_settings().max_concurrent_trials_per_job
        active = search.in_flight(session, job.id)
        made = confirm.confirmation_runs(session, job.id) if spec.search.confirm else set()
        if job.ended_by is None and (cause := _stop_condition(session, job, spec)):
            job.ended_by = cause
            search.cancel_waiting(session, job.id, f"the search ended: its {cause.value} was met")
            active = search.in_flight(session, job.id)
        # over: a stop condition ended it, or its confirmation runs began; its algorithm
        # proposes nothing more (Keras Tuner's random search may find a point again after
        # saying it was done)
        over = job.ended_by is not None or bool(made)
        if over and active < cap:
            added = []
            if spec.search.confirm is not None:
                added = _confirmations(session, job, spec, made, active, cap - active, now)
            new += added
            if active + len(added) == 0:
                jobs.end_search(session, job)
        elif active < cap:
            algorithm = algorithm or _search(session, job, spec)
        while algorithm is not None and active < cap and not over:
            proposing = time.perf_counter()
            proposal = algorithm.propose()
            took = time.perf_counter() - proposing
            if proposal.number is not None:
                new.append(
                    search.add_waiting_trial(
                        session, job.id, proposal.number, proposal.values or {}, now, took
                    )
                )
                active += 1
                continue
            if proposal.done and spec.search.confirm is not None:
                added = _confirmations(session, job, spec, made, active, cap - active, now)
                new += added
                active += len(added)
            if active == 0:
                if not proposal.done:
                    log.warning("job %s: search idle with no active trial; ending it", job.id)
                jobs.end_search(session, job)
            break
    if algorithm is not None:
        jobs.save_oracle_state(job, algorithm.state())
    session.flush()
    return [t.id for t in new]


def _stop_condition(session: Session, job: Job, spec: JobSpec) -> StopCause | None:
    """The stop condition the search met (``search.target``, ``search.patience_trials``)."""
    target, patience = spec.search.target, spec.search.patience_trials
    best = job.best_score
    if target is not None and best is not None and not job.direction.better(target, best):
        return StopCause.TARGET
    if (
        patience is not None
        and search.ended_since(session, job.id, job.best_trial_number) >= patience
    ):
        return StopCause.PATIENCE
    return None


def _confirmations(
    session: Session,
    job: Job,
    spec: JobSpec,
    made: set[tuple[int, int]],
    active: int,
    room: int,
    now: datetime,
) -> list[Trial]:
    """The search is done: its best configurations' confirmation runs not ``made`` yet, as
    many as ``room`` allows. They start once every trial of the search ended (its best are
    known then, and stay so: the runs made name them)."""
    if active and not made:
        return []
    assert spec.search.confirm is not None
    seeds = spec.search.confirm.seeds
    best = confirm.best_search_trials(session, job, spec.search.confirm.top_k)
    todo = [(n, values, s) for n, values, _ in best for s in range(seeds) if (n, s) not in made]
    number = confirm.next_number(session, job.id)
    added = []
    for offset, (of, values, seed) in enumerate(todo[:room]):
        trial = search.add_waiting_trial(
            session, job.id, number + offset, values, now, confirms=(of, seed)
        )
        added.append(trial)
    session.flush()
    return added


def conclude(claim: ClaimedTrial, result: TrialResult) -> list[int]:
    """Record a trial's result under its lease (with its model and checkpoint), then fold it into
    the job's search and dispatch the next trials, unless another worker holds the search (it
    folds this result too). Returns the trial ids to send; nothing if the lease was lost (another
    worker re-runs the trial: its result wins, this one is dropped). ``DatabaseUnavailableError``
    if the result could not be written before the retry budget ran out. In a Celery pool process
    the fold runs in the background (``worker.folding``) and this returns once the result is
    written."""
    if not run_retried("record a trial's result", _record, claim, result):
        log.warning(
            "trial %s of job %s: lease lost before its result was recorded; result dropped",
            claim.number,
            claim.job_id,
        )
        return []
    if folding.enabled():
        folding.fold_soon(claim.job_id)
        return []
    return dispatch(claim.job_id)


def _record(claim: ClaimedTrial, result: TrialResult) -> bool:
    with session_scope() as session:
        if not trials.record_result(session, claim.id, claim.lease, result):
            return trials.result_recorded(session, claim.id, claim.lease)
        score = result.finite_score
        if result.artifact is not None and score is not None:
            job = session.get_one(Job, claim.job_id)
            wanted = job.spec.get("search") or {}
            confirming = bool(wanted.get("confirm")) and bool(
                confirm.confirmation_runs(session, job.id)
            )
            kept = models_kept(wanted, confirming)
            artifacts.store_model(session, job, claim.number, score, result.artifact, kept)
        if result.checkpoint is not None:
            artifacts.store_checkpoint(session, claim.job_id, claim.number, result.checkpoint)
        return True


def _search(session: Session, job: Job, spec: JobSpec) -> SearchAlgorithm:
    """The job's search algorithm, restored from its state; it reads trial rows on demand."""
    from worker.training.oracle import Search
    from worker.training.study_search import StudySearch
    from worker.training.tpe_search import TpeSearch

    state = job.oracle_state
    if spec.study is not None:
        return StudySearch(spec, state)
    records = lambda numbers: search.search_records(session, job.id, numbers)  # noqa: E731
    if spec.search.algorithm == "tpe" and not spec.is_single_configuration:
        return TpeSearch(spec, state, records)
    # Every trial the algorithm proposed is a row, created in the same transaction.
    count = len(state["start_order"]) if state and "start_order" in state else 0
    return Search(spec, state, count, records)
