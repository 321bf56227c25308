"""Training health in the API's bodies: each epoch's probe record, a trial's verdicts, and a
job's summary (``health``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class LayerHealth(BaseModel):
    """One hidden layer on the probe batch after an epoch (stored with short keys)."""

    name: str = Field(description="the layer (`dense_0` is the lowest)")
    activation: str | None = Field(default=None, validation_alias="act")
    gradient_norm: float | None = Field(
        default=None,
        validation_alias="g",
        description="L2 norm of the loss's gradient on the layer's kernel",
    )
    weight_norm: float | None = Field(
        default=None, validation_alias="w", description="L2 norm of the kernel"
    )
    update_ratio: float | None = Field(
        default=None,
        validation_alias="u",
        description="how far the kernel moved since the last probed epoch, relative to its norm",
    )
    mean: float | None = Field(default=None, description="mean of the layer's outputs")
    std: float | None = Field(default=None, description="standard deviation of the layer's outputs")
    dead_share: float | None = Field(
        default=None,
        validation_alias="dead",
        description="share of units 0 on every probe row (ReLU)",
    )
    saturated_share: float | None = Field(
        default=None,
        validation_alias="sat",
        description="share of units at a bound on most probe rows (sigmoid, tanh)",
    )
    identical_share: float | None = Field(
        default=None,
        validation_alias="same",
        description="share of units whose incoming weights equal another's (a constant init)",
    )


class EpochHealth(BaseModel):
    """The network's health after an epoch, measured on a fixed probe batch of training rows."""

    layers: list[LayerHealth] = Field(default_factory=list)
    output_std: float | None = Field(
        default=None,
        validation_alias="out_std",
        description="spread of the predictions over the probe rows",
    )
    target_std: float | None = Field(
        default=None,
        validation_alias="y_std",
        description="spread of the probe rows' targets (a regression's): what output_std is "
        "compared with",
    )
    probe_loss: float | None = Field(default=None, validation_alias="loss")
    probe_s: float | None = Field(default=None, description="what measuring it took")


class VerdictPublic(BaseModel):
    """One finding about a trial's training: ``healthy``, ``vanishing_gradients``,
    ``exploding_gradients``, ``dead_units``, ``saturated_units``, ``symmetric_units``,
    ``collapsed``, ``diverged``, ``overfitting`` or ``still_improving``."""

    code: str
    evidence: dict[str, Any] = Field(
        default_factory=dict, description="the numbers it rests on: layer, epoch, values"
    )
    remedy: str = Field(default="", description="what the reference articles do about it")


class TrialHealth(BaseModel):
    """What the trial's training health records mean."""

    verdicts: list[VerdictPublic] = Field(default_factory=list)
    baseline: float | None = Field(
        default=None,
        description="the objective a constant prediction scores on the validation rows "
        "(majority class, training mean): the bar for having learned anything",
    )


class ValueVerdict(BaseModel):
    """A hyperparameter value that goes with a verdict: most trials that took it got it."""

    verdict: str
    hyperparameter: str
    value: str = Field(description="the value, or a third of a numeric range (`> 0.5`)")
    trials: int = Field(description="judged trials that took the value")
    with_verdict: int
    advice: str


class JobHealth(BaseModel):
    """A job's training health: verdicts counted over its judged trials (a trial may have
    several), the values that go with them, as advice from results."""

    judged_trials: int
    baseline: float | None = Field(
        description="the objective a constant prediction scores on the validation rows"
    )
    verdicts: dict[str, int]
    values: list[ValueVerdict]
