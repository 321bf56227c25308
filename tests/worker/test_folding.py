"""Results folded into the search by whoever holds it: a worker that finds the search taken does
not wait, and its result is never lost or told twice. No training here: trials are claimed and
concluded with made-up results, the search algorithm and storage are the real ones."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import timedelta

from sqlalchemy import update

from db.engine import session_scope
from db.models import JobStatus, Trial, TrialStatus
from db.repositories import jobs, recovery, trials
from db.repositories.trials import TrialResult
from db.values import utcnow
from tests.worker.helpers import create_job, get_job, get_trials, tiny_spec
from worker.dispatcher import conclude, dispatch


def _spec(trials: int) -> dict:  # type: ignore[type-arg]
    spec = tiny_spec(max_trials=trials)
    spec["model"]["units"] = {"type": "int", "min": 8, "max": 512}
    return spec


def _result(number: int) -> TrialResult:
    return TrialResult(TrialStatus.COMPLETED, score=0.5 + number / 1000, best_epoch=0)


def test_a_result_met_by_a_taken_search_is_folded_by_the_next_holder(postgres_url: str) -> None:
    job_id = create_job(tiny_spec(max_trials=3))
    first, *_ = dispatch(job_id)
    claim = trials.claim_trial(first, "w:1:2")
    assert claim is not None
    with session_scope() as holder:
        assert jobs.try_lock_search(holder, job_id)
        assert conclude(claim, _result(0)) == []  # recorded; no wait for the search
    row = next(t for t in get_trials(job_id) if t.id == first)
    assert (row.status, row.reported) == (TrialStatus.COMPLETED, False)
    dispatch(job_id)  # the next holder folds it in
    job, rows = get_job(job_id), get_trials(job_id)
    assert next(t for t in rows if t.id == first).reported
    assert job.trials_completed == 1 and job.best_trial_number == 0
    assert job.oracle_state["end_order"] == [str(claim.number)]


def test_a_late_result_from_a_worker_whose_trial_was_requeued_is_dropped(
    postgres_url: str,
) -> None:
    job_id = create_job(_spec(2))
    first, *_ = dispatch(job_id)
    late = trials.claim_trial(first, "frozen:1:2")
    assert late is not None
    with session_scope() as session:  # its lease went stale: the reaper took it back
        session.execute(
            update(Trial)
            .where(Trial.id == first)
            .values(heartbeat_at=utcnow() - timedelta(hours=1))
        )
    assert recovery.requeue_lost_trials(60, {}) == [first]
    rerun = trials.claim_trial(first, "other:1:2")
    assert rerun is not None
    conclude(rerun, _result(7))
    assert conclude(late, _result(0)) == []  # woken up: its result is dropped, not written
    row = next(t for t in get_trials(job_id) if t.id == first)
    assert (row.worker, row.score, row.attempts) == ("other:1:2", _result(7).score, 2)


def test_concurrent_results_are_each_folded_once(postgres_url: str) -> None:
    workers = 6
    job_id = create_job(_spec(24))
    queue = list(dispatch(job_id))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            while True:
                with lock:
                    if not queue:
                        if get_job(job_id).status.is_final:
                            return
                        trial_id = None
                    else:
                        trial_id = queue.pop(0)
                if trial_id is None:
                    threading.Event().wait(0.01)
                    queue_more = dispatch(job_id)  # what a dispatch message would do
                    with lock:
                        queue.extend(queue_more)
                    continue
                claim = trials.claim_trial(trial_id, f"w:1:{n}")
                if claim is None:
                    continue
                sent = conclude(claim, _result(claim.number))
                with lock:
                    queue.extend(sent)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    job, rows = get_job(job_id), get_trials(job_id)
    assert job.status is JobStatus.SUCCEEDED, job.error
    assert [t.number for t in rows] == list(range(24))
    assert all(t.status is TrialStatus.COMPLETED and t.reported and t.attempts == 1 for t in rows)
    told = Counter(job.oracle_state["end_order"])
    assert sorted(int(k) for k in told) == list(range(24)) and set(told.values()) == {1}
    assert len({str(t.hyperparameters) for t in rows}) == 24  # no proposal twice
    assert job.trials_completed == 24
