"""Hand out a job's trials, and close them: the search algorithm's state lives in the database.

Every step is ONE transaction holding the job's lock (``jobs.lock_job``: ``SELECT ... FOR
UPDATE`` on PostgreSQL, the writer lock on SQLite): restore the search algorithm from the job's
stored state, change it, store it back together with the trial rows. So two workers never get
the same trial, and a Bayesian proposal sees every trial finished before it. A step that meets a
transient database error is run again from its start (``db.transient``).

``dispatch`` creates waiting trials while the job has fewer than ``max_concurrent_trials_per_job``
active (waiting + running) ones; the caller sends one run-trial message per new trial AFTER the
commit (a message lost in between is re-sent by the reaper). Only ``cap`` messages per job are
ever in the queue, so several jobs interleave fairly on a FIFO queue. When the algorithm has
nothing left (done) or nothing for now (Hyperband waits for a round to end), no trial is created;
the job ends once nothing of it is active.

The search algorithm (``worker.training.oracle.Search``) is imported lazily: it needs Keras Tuner,
which only pool processes load.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from db.engine import session_scope
from db.models import Job
from db.repositories import artifacts, jobs, trials
from db.repositories.trials import ClaimedTrial, TrialResult
from db.settings import get_settings
from db.transient import DatabaseUnavailableError, run_retried
from db.values import utcnow
from search_spaces.schema import JobSpec
from worker.specs import parse_spec

if TYPE_CHECKING:
    from worker.training.oracle import Search

log = logging.getLogger(__name__)


def dispatch(job_id: str) -> list[int]:
    """Create the job's next trials (or end it); returns the new trial ids, to be sent.

    A database that stays away past the retry budget leaves the job as it is (the reaper sends
    it again: a job with no active trial and no recent dispatch); anything else wrong with the
    job (a stored spec that no longer validates, an algorithm's bug) fails it."""
    try:
        return run_retried("dispatch a job", _dispatch, job_id)
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


def _dispatch(job_id: str) -> list[int]:
    with session_scope() as session:
        job = jobs.lock_job(session, job_id)
        if job is None:
            return []
        return dispatch_locked(session, job)


def dispatch_locked(session: Session, job: Job, search: Search | None = None) -> list[int]:
    """``dispatch`` inside a transaction that already holds the job's lock."""
    if jobs.settle_job(session, job):
        return []
    from worker.training.oracle import planned_trials

    spec = parse_spec(job.spec, session)
    now = utcnow()
    jobs.mark_dispatched(job, planned_trials(spec), now)
    cap = get_settings().max_concurrent_trials_per_job
    active = trials.active_trials(session, job.id)
    if active >= cap:
        return []
    search = search or _search(session, job, spec)
    new = []
    while active < cap:
        proposal = search.propose()
        if proposal.number is not None:
            new.append(
                trials.add_waiting_trial(
                    session, job.id, proposal.number, proposal.values or {}, now
                )
            )
            active += 1
            continue
        if active == 0:
            if not proposal.done:
                log.warning("job %s: search idle with no active trial; ending it", job.id)
            jobs.end_search(session, job)
        break
    jobs.save_oracle_state(job, search.state())
    session.flush()
    return [t.id for t in new]


def conclude(claim: ClaimedTrial, result: TrialResult) -> list[int]:
    """Record a trial's result and dispatch the job's next trials, in one transaction under the
    job's lock. Returns the trial ids to send; nothing if the lease was lost (another worker
    re-runs the trial: its result wins, this one is dropped). ``DatabaseUnavailableError`` if
    the database stayed away past the retry budget (nothing recorded)."""
    return run_retried("record a trial's result", _conclude, claim, result)


def _search(session: Session, job: Job, spec: JobSpec) -> Search:
    """The job's search algorithm, restored from its state; it reads trial rows on demand."""
    from worker.training.oracle import Search

    return Search(
        spec,
        job.oracle_state,
        trials.trial_count(session, job.id),
        lambda numbers: trials.search_records(session, job.id, numbers),
    )


def _conclude(claim: ClaimedTrial, result: TrialResult) -> list[int]:
    with session_scope() as session:
        job = jobs.lock_job(session, claim.job_id)
        if job is None or not trials.record_result(session, claim.id, claim.lease, result):
            log.warning(
                "trial %s of job %s: lease lost before its result was recorded; result dropped",
                claim.number,
                claim.job_id,
            )
            return []
        spec = parse_spec(job.spec, session)
        search = None
        if result.status.informs_search:
            search = _search(session, job, spec)
            search.report(
                claim.number, result.finite_score, result.best_epoch or 0, result.failure_reason
            )
            jobs.save_oracle_state(job, search.state())
        score = result.finite_score
        if result.artifact is not None and score is not None:
            artifacts.store_model(
                session, job, claim.number, score, result.artifact, spec.search.top_k
            )
        if result.checkpoint is not None:
            artifacts.store_checkpoint(session, job.id, claim.number, result.checkpoint)
        session.flush()
        jobs.refresh_counters(session, job)
        return dispatch_locked(session, job, search)
