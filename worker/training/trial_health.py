"""A finished trial's verdicts on its training health: its recorded epochs (metrics and probe
records) judged by ``health.verdicts`` against what a constant prediction scores on the job's
validation rows."""

from __future__ import annotations

from typing import Any

from db.models import TrialStatus
from health.verdicts import TrialFacts, judge
from search_spaces.params import fixed_value, is_fixed
from search_spaces.schema import InputSpec
from worker.training.fit import SearchContext, TrialOutcome
from worker.training.hopeless_watch import job_baseline


def trial_health(
    ctx: SearchContext, outcome: TrialOutcome, values: dict[str, Any], epochs_allowed: int
) -> dict[str, Any] | None:
    """``{"verdicts": [...], "baseline": x}`` for a trial that trained (completed, diverged
    or pruned); None for one that did not get that far (failed, cancelled)."""
    trained = (TrialStatus.COMPLETED, TrialStatus.DIVERGED, TrialStatus.PRUNED)
    if outcome.status not in trained or not outcome.epochs:
        return None
    baseline = job_baseline(ctx.spec, ctx.data, values)
    facts = TrialFacts(
        epochs=outcome.epochs,
        objective=ctx.spec.objective,
        maximize=ctx.spec.direction == "max",
        baseline=baseline,
        score=outcome.score,
        diverged=outcome.status is TrialStatus.DIVERGED,
        epochs_allowed=epochs_allowed,
        hyperparameters=judged_values(ctx.spec.model.input, values),
    )
    return {"verdicts": [v.as_dict() for v in judge(facts)], "baseline": baseline}


def judged_values(given: InputSpec, values: dict[str, Any]) -> dict[str, Any]:
    """The trial's values as its verdicts read them: with ``standardize`` (whether its inputs
    were scaled at all: standardized, rescaled or batch-normalized; searched or fixed in the
    spec's ``model.input``, ``given``)."""
    standardized = values.get("input_standardize", _fixed(given.standardize))
    normalized = values.get("input_batch_norm", _fixed(given.batch_norm))
    scaled = standardized is True or normalized is True or given.rescale is not None
    return {**values, "standardize": scaled}


def _fixed(param: Any) -> Any:
    """A fixed parameter's value (None for a searched one: its trial's value says)."""
    return fixed_value(param) if is_fixed(param) else None
