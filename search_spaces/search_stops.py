"""The search section's pruners and stop conditions, and the checks that tie them (and
``confirm``) to the rest of the spec.

A pruner stops a trial whose learning curve trails the others' at the same epoch, with
Optuna's semantics (the worker runs Optuna's own pruner on the job's epochs as stored):

- ``median``: after ``warmup_epochs`` epochs, every ``interval`` epochs, stop a trial whose best
  objective so far is worse than the median of the completed trials' at that epoch, once
  ``startup_trials`` trials have completed (``optuna.pruners.MedianPruner``).
- ``asha``: asynchronous successive halving. Rungs are at ``min_epochs`` x
  ``reduction_factor``^(``min_early_stopping_rate`` + k) epochs; a trial reaching a rung goes on
  only if its objective there is in the best 1/``reduction_factor`` of every trial that reached
  that rung so far, without waiting for the others (``optuna.pruners.SuccessiveHalvingPruner``).

Epochs count from 1 here (after ``warmup_epochs`` = 2 epochs trained, say), where Keras counts
from 0. A trial is never pruned on its last allowed epoch: it completes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from search_spaces import limits
from search_spaces.errors import SpecError
from search_spaces.params import StrictModel

if TYPE_CHECKING:
    from search_spaces.schema import JobSpec


class MedianPrunerSpec(StrictModel):
    """Optuna's median pruner."""

    kind: Literal["median"]
    startup_trials: int = Field(
        default=5, ge=0, le=limits.MAX_TRIALS, description="Completed trials before any pruning."
    )
    warmup_epochs: int = Field(
        default=0,
        ge=0,
        le=limits.MAX_EPOCHS,
        description="Epochs a trial trains before it may be pruned (Optuna's n_warmup_steps, "
        "epochs counted from 0).",
    )
    interval: int = Field(
        default=1, ge=1, le=limits.MAX_EPOCHS, description="Epochs between two judgements."
    )


class AshaPrunerSpec(StrictModel):
    """Asynchronous successive halving (Optuna's ``SuccessiveHalvingPruner``)."""

    kind: Literal["asha"]
    min_epochs: int = Field(
        default=1, ge=1, le=limits.MAX_EPOCHS, description="Epochs to the first rung."
    )
    reduction_factor: int = Field(
        default=3, ge=2, le=10, description="Each rung keeps the best 1/reduction_factor."
    )
    min_early_stopping_rate: int = Field(
        default=0, ge=0, le=10, description="The first rung is min_epochs x factor^this."
    )
    bootstrap_count: int = Field(
        default=0,
        ge=0,
        le=limits.MAX_TRIALS,
        description="Trials that must reach a rung before any trial there goes on.",
    )

    def rung_epoch(self, rung: int) -> int:
        """The epoch (counted from 1) of rung ``rung`` (0, 1, ...)."""
        return self.min_epochs * self.reduction_factor ** (self.min_early_stopping_rate + rung)

    def rung_epochs(self, max_epochs: int) -> list[int]:
        """The epochs (counted from 1) at which a trial of ``max_epochs`` epochs is judged."""
        rungs: list[int] = []
        while (epoch := self.rung_epoch(len(rungs))) < max_epochs:
            rungs.append(epoch)
        return rungs


PrunerSpec = Annotated[MedianPrunerSpec | AshaPrunerSpec, Field(discriminator="kind")]


def check_search_stops(spec: JobSpec) -> None:
    """Pruners, stop conditions and confirmation make sense for this job."""
    search = spec.search
    searching = spec.study is None and not spec.is_single_configuration
    if search.pruner is not None:
        if not searching:
            raise SpecError(
                "search.pruner",
                "a pruner compares a search's trials: not for a study or a single configuration",
            )
        if search.algorithm == "hyperband":
            raise SpecError(
                "search.pruner", "not with hyperband: it stops trials by its own schedule"
            )
    for name in ("target", "patience_trials"):
        if getattr(search, name) is not None and not searching:
            raise SpecError(
                f"search.{name}",
                "a stop condition ends a search early: not for a study or a single configuration",
            )
    _check_pruner_fires(spec)
    if search.algorithm == "tpe" and searching:
        stepped = [
            name
            for name, p in spec.iter_params()
            if getattr(p, "sampling", None) == "reverse_log" and getattr(p, "step", None)
        ]
        if stepped:
            raise SpecError(
                "search.algorithm",
                f"tpe samples a reverse_log range without a step; drop the step of "
                f"{', '.join(stepped)}, or use random or bayesian search",
            )
    if search.multivariate and search.algorithm != "tpe":
        raise SpecError("search.multivariate", "only for the tpe algorithm")
    if search.confirm is not None and (search.algorithm == "hyperband" or spec.study is not None):
        raise SpecError(
            "search.confirm",
            "confirming re-runs a search's best configurations: not for a study, nor for "
            "hyperband (its trials train for different numbers of epochs)",
        )
    if spec.trial_budget > limits.MAX_TRIALS:
        raise SpecError(
            "search.confirm",
            f"{spec.trial_budget} trials with the confirmation runs, over the limit of "
            f"{limits.MAX_TRIALS} (max_trials)",
            limits.MAX_TRIALS,
        )


def _check_pruner_fires(spec: JobSpec) -> None:
    """A pruner that could never stop a trial (no rung, or a warm-up as long as the training)
    is refused rather than run for nothing."""
    pruner, epochs = spec.search.pruner, spec.max_epochs
    if isinstance(pruner, AshaPrunerSpec) and not pruner.rung_epochs(epochs):
        raise SpecError(
            "search.pruner.min_epochs",
            f"the first rung (min_epochs x reduction_factor^min_early_stopping_rate = "
            f"{pruner.rung_epoch(0)} "
            f"epochs) is not before the last of training.epochs ({epochs})",
        )
    if isinstance(pruner, MedianPrunerSpec) and pruner.warmup_epochs >= epochs - 1:
        raise SpecError(
            "search.pruner.warmup_epochs",
            f"a trial is never pruned on its last epoch: warmup_epochs must be under "
            f"training.epochs - 1 ({epochs - 1})",
        )
