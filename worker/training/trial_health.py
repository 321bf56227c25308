"""A finished trial's verdicts on its training health: its recorded epochs (metrics and probe
records) judged by ``health.verdicts`` against what a constant prediction scores on the job's
validation rows."""

from __future__ import annotations

from typing import Any

from db.models import TrialStatus
from health.baseline import constant_baseline
from health.verdicts import TrialFacts, judge
from search_spaces.datasets import Task
from worker.training.fit import SearchContext, TrialOutcome


def job_baseline(ctx: SearchContext, values: dict[str, Any]) -> float | None:
    """The objective of the best constant prediction (majority class, training mean...)."""
    spec = ctx.spec
    loss = values.get("loss", "mse")
    return constant_baseline(
        spec.objective,
        spec.task is not Task.REGRESSION,
        ctx.data.y_train,
        ctx.data.y_val,
        loss if isinstance(loss, str) else "mse",
    )


def trial_health(
    ctx: SearchContext, outcome: TrialOutcome, values: dict[str, Any], epochs_allowed: int
) -> dict[str, Any] | None:
    """``{"verdicts": [...], "baseline": x}`` for a trial that trained (completed or
    diverged); None for one that did not get that far (failed, cancelled)."""
    if outcome.status not in (TrialStatus.COMPLETED, TrialStatus.DIVERGED) or not outcome.epochs:
        return None
    baseline = job_baseline(ctx, values)
    facts = TrialFacts(
        epochs=outcome.epochs,
        objective=ctx.spec.objective,
        maximize=ctx.spec.direction == "max",
        baseline=baseline,
        score=outcome.score,
        diverged=outcome.status is TrialStatus.DIVERGED,
        epochs_allowed=epochs_allowed,
        hyperparameters=_with_input_scaling(ctx, values),
    )
    return {"verdicts": [v.as_dict() for v in judge(facts)], "baseline": baseline}


def _with_input_scaling(ctx: SearchContext, values: dict[str, Any]) -> dict[str, Any]:
    """The trial's values, and ``standardize``: whether its inputs were scaled at all
    (standardized, rescaled or batch-normalized; searched or fixed in the spec)."""
    given = ctx.spec.model.input
    standardized = values.get("input_standardize", given.standardize)
    normalized = values.get("input_batch_norm", given.batch_norm)
    scaled = standardized is True or normalized is True or given.rescale is not None
    return {**values, "standardize": scaled}
