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


def best_search_trials(session: Session, job: Job, count: int) -> list[tuple[int, dict[str, Any]]]:
    """``(number, hyperparameters)`` of the search's ``count`` best completed trials (its own
    trials, not confirmation runs), best first, ties by number."""
    rows = session.execute(
        select(Trial.number, Trial.hyperparameters)
        .where(
            Trial.job_id == job.id,
            Trial.confirms.is_(None),
            Trial.status == TrialStatus.COMPLETED,
            Trial.score.is_not(None),
        )
        .order_by(job.direction.order(Trial.score), Trial.number)
        .limit(count)
    ).all()
    return [(r.number, dict(r.hyperparameters)) for r in rows]


def next_number(session: Session, job_id: str) -> int:
    """The number the job's next trial takes."""
    found = session.scalar(select(func.max(Trial.number)).where(Trial.job_id == job_id))
    return 0 if found is None else int(found) + 1


def confirmed_means(session: Session, job: Job) -> list[tuple[int, float, list[int]]]:
    """Each confirmed configuration (a trial with confirmation runs): ``(its number, the mean
    score of its completed runs, the runs' numbers best first)``, best mean first."""
    rows = session.execute(
        select(Trial.number, Trial.confirms, Trial.score).where(
            Trial.job_id == job.id,
            Trial.status == TrialStatus.COMPLETED,
            Trial.score.is_not(None),
        )
    ).all()
    confirmed = {r.confirms for r in rows if r.confirms is not None}
    runs: dict[int, list[tuple[float, int]]] = {n: [] for n in confirmed}
    for r in rows:
        config = r.number if r.number in confirmed else r.confirms
        if config in runs:
            runs[config].append((r.score, r.number))
    sign = -1.0 if job.direction == "max" else 1.0
    found = []
    for number, scored in runs.items():
        mean = sum(s for s, _ in scored) / len(scored)
        ordered = [n for _, n in sorted(scored, key=lambda sn: (sign * sn[0], sn[1]))]
        found.append((number, mean, ordered))
    return sorted(found, key=lambda f: (sign * f[1], f[0]))
