"""What a job's pruner reads: each trial's objective at each epoch, as stored while it trains.

Read by the worker that judges a trial after each of its epochs (no lock: the epochs of other
trials are written under their own leases). A caller keeps the curves of trials that ended
(``TrialCurve.ended``) and names them in ``known``: only the trials still training and the ones
that ended since are read again, so a judgement costs what changed, not the whole search.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field

from sqlalchemy import select

from db.engine import session_scope
from db.models import Epoch, Trial, TrialStatus
from db.transient import retried


@dataclass(frozen=True)
class TrialCurve:
    """One trial of the search (not a confirmation run) and its objective after each epoch of
    its first execution, by epochs trained (1, 2, ...; NaN where the value was not finite)."""

    number: int
    status: TrialStatus
    score: float | None
    values: dict[int, float] = field(default_factory=dict)

    @property
    def ended(self) -> bool:
        return not self.status.is_active


@retried("read a job's learning curves")
def trial_curves(
    job_id: str, objective: str, known: Collection[int] = (), *, skip: int | None = None
) -> list[TrialCurve]:
    """The job's trials but ``skip`` and the ``known`` ones (ended trials whose curves the
    caller has), with their curves."""
    with session_scope() as session:
        rows = session.execute(
            select(Trial.id, Trial.number, Trial.status, Trial.score).where(
                Trial.job_id == job_id, Trial.confirms.is_(None)
            )
        ).all()
        wanted = {r.id: r for r in rows if r.number not in known and r.number != skip}
        values: dict[int, dict[int, float]] = {trial_id: {} for trial_id in wanted}
        if wanted:
            value = Epoch.metrics[objective].as_float()
            query = select(Epoch.trial_id, Epoch.epoch, value).where(
                Epoch.trial_id.in_(list(wanted)), Epoch.execution == 0
            )
            for trial_id, epoch, objective_value in session.execute(query):
                values[trial_id][epoch + 1] = (
                    math.nan if objective_value is None else float(objective_value)
                )
        return [
            TrialCurve(row.number, TrialStatus(row.status), row.score, values[trial_id])
            for trial_id, row in wanted.items()
        ]
