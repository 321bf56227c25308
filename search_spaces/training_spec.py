"""The spec's training and search sections: the learning-rate schedule, epochs, batch size, loss
and early stopping, and how the search runs (algorithm, objective, budget, seeds)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from search_spaces import limits
from search_spaces.errors import SpecError
from search_spaces.params import CatParam, FloatParam, IntParam, StrictModel
from search_spaces.search_stops import PrunerSpec
from search_spaces.vocabulary import (
    Algorithm,
    BatchSize,
    DecayEpochs,
    DecayFactor,
    Epochs,
    NonNegative,
    Patience,
    RegressionLoss,
    ScheduleKind,
    SchedulePower,
    Seed,
)


class ScheduleSpec(StrictModel):
    """Learning-rate schedule. Decay periods are in epochs.

    power: lr / (1 + t/s)^c; exponential: lr * 0.1^(t/s); piecewise: lr * multipliers[i] after
    boundaries[i-1] epochs; plateau: lr * factor after ``patience`` epochs without improvement;
    one_cycle: up from lr/10 to lr over the first half, down to lr/10 then lr/1000 over the rest.
    """

    kind: CatParam(ScheduleKind) = "constant"
    decay_epochs: FloatParam(DecayEpochs) = 10.0
    power: FloatParam(SchedulePower) = 1.0
    boundaries: list[Annotated[int, Field(ge=1, le=limits.MAX_EPOCHS)]] = Field(
        default_factory=list, max_length=limits.MAX_PIECEWISE_BOUNDARIES
    )
    multipliers: list[Annotated[float, Field(gt=0.0, le=100.0)]] = Field(
        default_factory=list, max_length=limits.MAX_PIECEWISE_BOUNDARIES + 1
    )
    factor: FloatParam(DecayFactor) = 0.5
    patience: IntParam(Patience) = 5

    @model_validator(mode="after")
    def _piecewise(self) -> ScheduleSpec:
        if "piecewise" in self.kind.candidates():
            if not self.boundaries:
                raise SpecError(
                    "schedule.boundaries", "piecewise needs boundaries (epochs) and multipliers"
                )
            if sorted(set(self.boundaries)) != self.boundaries:
                raise SpecError("schedule.boundaries", "must be strictly increasing")
            if len(self.multipliers) != len(self.boundaries) + 1:
                raise SpecError("schedule.multipliers", "needs exactly len(boundaries) + 1 values")
        return self


class EarlyStoppingSpec(StrictModel):
    enabled: bool = True
    monitor: str | None = Field(default=None, description="Default: the search objective.")
    patience: Patience = 5
    min_delta: NonNegative = 0.0
    restore_best_weights: bool = True


class StopHopelessSpec(StrictModel):
    """Stop a trial that cannot learn (``health.hopeless``): its objective no better than a
    constant prediction's for ``patience`` epochs, with constant predictions, identical units
    or a training loss that no longer falls; or its objective not finite for as long. It ends
    as ``pruned``, with its reason and its best epoch's score."""

    enabled: bool | None = Field(
        default=None,
        description="Default: on for a search, off for a single configuration and a study's "
        "variants (they are trained to be seen to the end).",
    )
    patience: int = Field(default=5, ge=1, le=limits.MAX_EPOCHS)


class TrainingSpec(StrictModel):
    epochs: IntParam(Epochs) = Field(default=10, description="Upper bound under early stopping.")
    batch_size: IntParam(BatchSize) = 32
    loss: CatParam(RegressionLoss) = Field(
        default="mse", description="Regression loss (classification: crossentropy)."
    )
    early_stopping: EarlyStoppingSpec = Field(default_factory=EarlyStoppingSpec)
    stop_hopeless: StopHopelessSpec = Field(default_factory=StopHopelessSpec)
    health_probe: bool = Field(
        default=True,
        description="After the first and last epochs, and between them as often as keeps it "
        "within ~3% of the training time, measure the network on a fixed probe batch of "
        "training rows: per hidden layer its gradient, weights and update, its dead, "
        "saturated and identical units; and the predictions' spread.",
    )
    seed: Seed | None = Field(
        default=None,
        description="The seed of every trial's training (batch order, and what the layers do "
        "not seed themselves), plus the execution's index. Default: search.seed + 100 x the "
        "trial's number (unseeded without search.seed). A trial's spec sets it to the trial's.",
    )


class ConfirmSpec(StrictModel):
    """Once the search ends, train its ``top_k`` best configurations again with ``seeds``
    other seeds each (other initial weights and batch order), and rank them by their mean over
    all their runs: the job's best and the model served are the best mean's, not a lucky
    seed's."""

    top_k: int = Field(default=3, ge=1, le=limits.MAX_TOP_K)
    seeds: int = Field(default=2, ge=1, le=limits.MAX_STUDY_SEEDS)


#: a confirmation run's seeds: the search's own plus this times (its seed + 1).
CONFIRM_SEED_STEP = 1_000_003


def models_kept(search: dict[str, Any], confirming: bool) -> int:
    """How many models a running job keeps stored (``search`` as JSON): its ``top_k``; with
    ``confirm``, at least one per configuration to confirm, and once ``confirming``, room for
    every confirmation run too (ranked by their configurations' means at the end, then cut to
    ``top_k``)."""
    kept = int(search.get("top_k") or 1)
    confirm = search.get("confirm")
    if confirm:
        kept = max(kept, int(confirm["top_k"]))
        if confirming:
            kept += int(confirm["top_k"]) * int(confirm["seeds"])
    return kept


def confirm_seeded(spec_json: dict[str, Any], seed: int) -> dict[str, Any]:
    """The job's spec (as JSON) for a confirmation run with ``seed``: its ``search.seed``
    (the layers' initial weights: every trial of a search shares them) and a fixed
    ``training.seed`` (batch order) moved by ``CONFIRM_SEED_STEP`` x (seed + 1)."""
    step = CONFIRM_SEED_STEP * (seed + 1)

    def moved(value: int | None) -> int:
        return ((value or 0) + step) % (limits.MAX_SEED + 1)

    search = dict(spec_json.get("search") or {})
    training = dict(spec_json.get("training") or {})
    search["seed"] = moved(search.get("seed"))
    if training.get("seed") is not None:
        training["seed"] = moved(training["seed"])
    return {**spec_json, "search": search, "training": training}


class SearchSettings(StrictModel):
    algorithm: Algorithm = "random"
    objective: str | None = Field(
        default=None, description="Default: val_accuracy, or val_loss for regression."
    )
    direction: Literal["min", "max"] | None = Field(
        default=None, description="Default: from the objective."
    )
    max_trials: int = Field(default=10, ge=1, le=limits.MAX_TRIALS)
    executions_per_trial: int = Field(default=1, ge=1, le=limits.MAX_EXECUTIONS_PER_TRIAL)
    seed: Seed | None = None
    num_initial_points: int | None = Field(
        default=None,
        ge=1,
        le=limits.MAX_TRIALS,
        description="Bayesian and TPE: random trials before the model. Default: 3 per "
        "searched hyperparameter (a per-layer one once per layer; fixed values do not count), "
        "at most a quarter of max_trials, at least 2. A submitted job records the value used.",
    )
    hyperband_factor: int = Field(default=3, ge=2, le=10)
    hyperband_iterations: int = Field(default=1, ge=1, le=5)
    top_k: int = Field(default=1, ge=1, le=limits.MAX_TOP_K, description="Best models stored.")
    time_limit_s: int | None = Field(default=None, ge=1, le=limits.MAX_TIME_LIMIT_S)
    multivariate: bool = Field(
        default=False,
        description="TPE: model the hyperparameters jointly (Optuna's multivariate TPE, "
        "grouped where the space is conditional), not each on its own.",
    )
    pruner: PrunerSpec | None = Field(
        default=None,
        description="Stop trials whose learning curves trail the others' (median or asha); "
        "they end as pruned.",
    )
    target: float | None = Field(
        default=None,
        allow_inf_nan=False,
        description="Stop the search once a trial's objective reaches this value.",
    )
    patience_trials: int | None = Field(
        default=None,
        ge=1,
        le=limits.MAX_TRIALS,
        description="Stop the search after this many trials in a row ended without improving "
        "on the best.",
    )
    confirm: ConfirmSpec | None = Field(
        default=None,
        description="Re-run the best configurations with other seeds and rank them by their "
        "mean (not for hyperband or a study).",
    )


def training_seed(search_seed: int | None, fixed_seed: int | None, trial_number: int) -> int | None:
    """The seed trial ``trial_number`` trains with (before adding the execution's index)."""
    if fixed_seed is not None:
        return fixed_seed
    return None if search_seed is None else search_seed + trial_number * 100
