"""Trials: a job's leaderboard, one trial with its epochs, one trial as a spec, and every trial
as a CSV table."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy.orm import Session

from api import trial_csv
from api.errors import ConflictError, NotFoundError, quoted_id
from api.schemas import TrialDetail, TrialPage, TrialPublic
from api.services import transaction
from api.services.jobs import job_or_404
from db.models import TrialStatus
from db.repositories import leaderboard, uploads
from db.settings import Settings
from search_spaces.schema import JobSpec
from search_spaces.study_spec import variant_json
from search_spaces.training_spec import confirm_seeded
from search_spaces.trial_spec import TrialSpec, trial_spec


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


def get_trial_spec(settings: Settings, owner: str, job_id: str, number: int) -> TrialSpec:
    """The one-trial spec that trains trial ``number`` again; 409 if the job's uploaded
    dataset is gone (the spec could not be run)."""

    def read(session: Session) -> TrialSpec:
        job = job_or_404(session, job_id, owner)
        trial = leaderboard.get_trial(session, job_id, number, with_epochs=False)
        if trial is None:
            raise NotFoundError(f"trial {number} of job {quoted_id(job_id)} not found")
        context = {"datasets": uploads.dataset_resolver(session, owner)}
        spec_json, values = job.spec, dict(trial.hyperparameters or {})
        if spec_json.get("study"):  # a study's trial: its variant with its seed
            spec_json = variant_json(spec_json, values["variant"], int(values["seed"]))
            values = {}
        elif trial.confirm_seed is not None:  # a confirmation run: the seeds it trained with
            spec_json = confirm_seeded(spec_json, trial.confirm_seed)
        try:
            spec = JobSpec.model_validate(spec_json, context=context)
            written = trial_spec(spec, values, number)
            JobSpec.model_validate(written.spec, context=context)
        except ValidationError as error:
            raise ConflictError(
                f"job {quoted_id(job_id)} can no longer be run as a spec: "
                f"{error.errors()[0]['msg']}"
            ) from None
        return written

    return transaction(settings, "write a trial as a spec", read)


@dataclass(frozen=True)
class TrialsCsv:
    """A job's trials as CSV text, and the file name to save it under."""

    filename: str
    text: str


def trials_csv(settings: Settings, owner: str, job_id: str) -> TrialsCsv:
    """Every trial of the job, by number, as a CSV table (``api.trial_csv``); the header alone
    for a job without trials yet. A job has at most ``max_trials`` (<= 2000) trials: the
    table is built in memory."""

    def read(session: Session) -> TrialsCsv:
        job = job_or_404(session, job_id, owner)
        text = trial_csv.trials_csv(leaderboard.trials_by_number(session, job.id))
        # the stored id (32 hex digits), never the path's text, goes into the header
        return TrialsCsv(filename=f"{job.id}-trials.csv", text=text)

    return transaction(settings, "export trials", read)
