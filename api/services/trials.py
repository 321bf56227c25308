"""Trials: a job's leaderboard, and one trial with its epochs."""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.errors import NotFoundError, quoted_id
from api.schemas import TrialDetail, TrialPage, TrialPublic
from api.services import transaction
from api.services.jobs import job_or_404
from db.models import TrialStatus
from db.repositories import leaderboard
from db.settings import Settings


def list_trials(
    settings: Settings,
    owner: str,
    job_id: str,
    *,
    sort: str,
    order: leaderboard.Order | None,
    status: TrialStatus | None,
    limit: int,
    offset: int,
) -> TrialPage:
    """A page of the job's leaderboard."""

    def read(session: Session) -> TrialPage:
        job = job_or_404(session, job_id, owner)
        rows, total = leaderboard.list_trials(
            session, job, sort=sort, order=order, status=status, limit=limit, offset=offset
        )
        items = [TrialPublic.model_validate(t) for t in rows]
        return TrialPage(items=items, total=total, limit=limit, offset=offset)

    return transaction(settings, "list trials", read)


def get_trial(settings: Settings, owner: str, job_id: str, number: int) -> TrialDetail:
    """One trial with its epochs."""

    def read(session: Session) -> TrialDetail:
        job_or_404(session, job_id, owner)
        trial = leaderboard.get_trial(session, job_id, number, with_epochs=True)
        if trial is None:
            raise NotFoundError(f"trial {number} of job {quoted_id(job_id)} not found")
        return TrialDetail.model_validate(trial)

    return transaction(settings, "read a trial", read)
