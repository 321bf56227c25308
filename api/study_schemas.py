"""Response bodies of a technique study's result (``GET /jobs/{id}/study``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class Stats(BaseModel):
    """A quantity over a variant's seeds: its mean, sample std and confidence interval."""

    n: int = Field(description="seeds with a value")
    mean: float | None
    std: float | None
    low: float | None = Field(description="the interval of the mean (Student t)")
    high: float | None


class Difference(BaseModel):
    """The variant's mean minus the baseline's, with Welch's interval and p-value."""

    delta: float | None
    low: float | None
    high: float | None
    p_value: float | None
    beyond_noise: bool | None = Field(
        description="the interval excludes 0; null with fewer than 2 seeds on either side"
    )
    p_holm: float | None = Field(
        default=None,
        description="the objective's p-value adjusted for the study's other comparisons (Holm)",
    )
    beyond_noise_holm: bool | None = Field(
        default=None, description="the adjusted p-value below 1 - confidence"
    )


class VersusBaseline(BaseModel):
    objective: Difference
    fit_s: Difference


class VariantResult(BaseModel):
    """One variant over its seeds."""

    name: str
    patch: dict[str, Any] = Field(description="what it changes of the base spec")
    is_baseline: bool
    trials: dict[str, int] = Field(description="its trials by status")
    objective: Stats
    fit_s: Stats = Field(description="seconds in model.fit per trial")
    epochs_to_best: Stats
    vs_baseline: VersusBaseline | None = None
    reading: str | None = None
    curve: list[float | None] = Field(
        description="the objective per epoch, the mean over the seeds that reached it"
    )


class StudyResult(BaseModel):
    """A technique study's table: each variant's mean and interval over the seeds, its
    difference to the baseline variant, and a plain reading of which differences exceed the
    seeds' noise."""

    objective: str
    direction: str
    baseline: str
    seeds: int
    confidence: float
    trials_ended: int
    trials_planned: int
    variants: list[VariantResult]
    reading: list[str]
