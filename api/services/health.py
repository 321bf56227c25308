"""A job's training health: its trials' verdicts counted, and the hyperparameter values that go
with them (``health.summary``)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.health_schemas import JobHealth, ValueVerdict
from api.services import transaction
from api.services.jobs import job_or_404
from db.repositories import health as repository
from db.settings import Settings
from health.summary import associations, judged, verdict_counts


def job_health(settings: Settings, owner: str, job_id: str) -> JobHealth:
    """The summary of the job's judged trials (those that trained: completed, diverged or
    pruned)."""

    def read(session: Session) -> JobHealth:
        job_or_404(session, job_id, owner)
        rows = repository.judged_trials(session, job_id)
        trials = [judged(params, health) for params, health in rows]
        baselines = [h.get("baseline") for _, h in rows if h.get("baseline") is not None]
        return JobHealth(
            judged_trials=len(trials),
            baseline=baselines[-1] if baselines else None,
            verdicts=verdict_counts(trials),
            values=[
                ValueVerdict(
                    verdict=a.verdict,
                    hyperparameter=a.hyperparameter,
                    value=a.value,
                    trials=a.trials,
                    with_verdict=a.with_verdict,
                    advice=a.advice(),
                )
                for a in associations(trials)
            ],
        )

    return transaction(settings, "summarize a job's training health", read)
