"""A search's confirmation runs (``search.confirm``): the configurations to train again, the
runs made so far, and each confirmed configuration's mean over all its runs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Job, Trial, TrialStatus


def confirmation_runs(session: Session, job_id: str) -> set[tuple[int, int]]:
    """``(confirms, confirm_seed)`` of the job's confirmation runs made so far."""
    rows = session.execute(
        select(Trial.confirms, Trial.confirm_seed).where(
            Trial.job_id == job_id, Trial.confirms.is_not(None)
        )
    ).all()
    return {(r.confirms, r.confirm_seed) for r in rows}


def best_search_trials(
    session: Session, job: Job, count: int
) -> list[tuple[int, dict[str, Any], float]]:
    """``(number, hyperparameters, score)`` of the search's ``count`` best completed trials
    (its own trials, not confirmation runs), best first, ties by number."""
    rows = session.execute(
        select(Trial.number, Trial.hyperparameters, Trial.score)
        .where(
            Trial.job_id == job.id,
            Trial.confirms.is_(None),
            Trial.status == TrialStatus.COMPLETED,
            Trial.score.is_not(None),
        )
        .order_by(job.direction.order(Trial.score), Trial.number)
        .limit(count)
    ).all()
    return [(r.number, dict(r.hyperparameters), float(r.score)) for r in rows]


def next_number(session: Session, job_id: str) -> int:
    """The number the job's next trial takes."""
    found = session.scalar(select(func.max(Trial.number)).where(Trial.job_id == job_id))
    return 0 if found is None else int(found) + 1


def confirmed(
    session: Session, job: Job, top_k: int, seeds: int
) -> list[tuple[int, float, list[int]]]:
    """The search's ``top_k`` best configurations that every one of their runs confirmed (their
    own trial and ``seeds`` confirmation runs, all completed: a configuration that failed,
    diverged or stopped on a seed, or whose runs did not all happen, is not confirmed), as
    ``(its trial's number, its mean score, its runs' numbers best first)``, best mean first."""
    best = best_search_trials(session, job, top_k)
    rows = session.execute(
        select(Trial.number, Trial.confirms, Trial.status, Trial.score).where(
            Trial.job_id == job.id, Trial.confirms.in_([n for n, _, _ in best])
        )
    ).all()
    sign = -1.0 if job.direction == "max" else 1.0
    found = []
    for number, _, score in best:
        runs = [r for r in rows if r.confirms == number]
        done = [r for r in runs if r.status is TrialStatus.COMPLETED and r.score is not None]
        if len(runs) != seeds or len(done) != seeds:
            continue
        scored = [(score, number)] + [(float(r.score), r.number) for r in done]
        mean = sum(s for s, _ in scored) / len(scored)
        ordered = [n for _, n in sorted(scored, key=lambda sn: (sign * sn[0], sn[1]))]
        found.append((number, mean, ordered))
    return sorted(found, key=lambda f: (sign * f[1], f[0]))
