"""Request and response bodies of the HTTP API (``XCreate`` in, ``XPublic`` out)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    computed_field,
    model_validator,
)

from api.health_schemas import EpochHealth, TrialHealth
from db.models import JobStatus, StopCause, Trial, TrialStatus
from db.values import as_utc

T = TypeVar("T")


#: SQLite hands timezone-aware columns back naive; they were written in UTC.
UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]


class Page(BaseModel, Generic[T]):
    """One page of a listing."""

    items: list[T]
    total: int = Field(description="Items matching the filter, over all pages.")
    limit: int
    offset: int


class JobWarning(BaseModel):
    """Rule-of-thumb advice on the spec (never blocks a submission)."""

    code: str
    message: str
    fields: list[str] = Field(default_factory=list)


class JobSubmitted(BaseModel):
    """The answer to a submission: the job is queued."""

    id: str
    status: JobStatus
    warnings: list[JobWarning]
    url: str


class FromRow(BaseModel):
    """A response body read straight off an ORM row (``Model.model_validate(row)``)."""

    model_config = ConfigDict(from_attributes=True)


class JobPublic(FromRow):
    """A job as clients see it."""

    id: str
    owner: str
    name: str | None
    status: JobStatus
    algorithm: str
    dataset: str
    objective: str
    direction: str
    max_trials: int
    trials_completed: int
    trials_failed: int
    trials_diverged: int
    trials_pruned: int = Field(
        description="Stopped early as not worth finishing (search.pruner, training.stop_hopeless)."
    )
    best_trial_number: int | None
    best_score: float | None
    warnings: list[JobWarning]
    dataset_info: dict[str, Any] | None
    error: str | None
    ended_by: StopCause | None = Field(
        default=None,
        description="What ended the search: max_trials (its trials ran out), time_limit_s, "
        "target, patience_trials, or cancelled; null while it runs, or when an error failed it.",
    )
    cancel_requested: bool
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    spec: dict[str, Any]

    @computed_field(description="Trials finished / max_trials (1.0 once the job succeeded).")
    @property
    def progress(self) -> float:
        if self.status == JobStatus.SUCCEEDED:
            return 1.0
        done = (
            self.trials_completed + self.trials_failed + self.trials_diverged + self.trials_pruned
        )
        return min(1.0, done / self.max_trials) if self.max_trials else 0.0


class TrialTimings(FromRow):
    """Where a trial's wall time went: proposed (``proposal_s``), waiting in the queue
    (``queued_s``), then trained (``duration_s``, of which ``fit_duration_s`` in fit)."""

    proposed_at: UtcDatetime | None = Field(description="When the search proposed it.")
    proposal_s: float | None = Field(description="Seconds the search took to propose it.")
    started_at: UtcDatetime | None = Field(description="When its (last) attempt started.")
    finished_at: UtcDatetime | None
    duration_s: float | None = Field(description="Seconds from its start to its end.")
    fit_duration_s: float | None = Field(description="Seconds in Keras's fit.")

    @computed_field(description="Seconds from its proposal to its (last) start.")  # type: ignore[prop-decorator]
    @property
    def queued_s(self) -> float | None:
        if self.proposed_at is None or self.started_at is None:
            return None
        return max(0.0, (self.started_at - self.proposed_at).total_seconds())


class TrialPublic(FromRow):
    """One row of a job's leaderboard."""

    number: int
    status: TrialStatus
    hyperparameters: dict[str, Any]
    score: float | None
    best_epoch: int | None
    epochs_run: int
    metrics: dict[str, Any] | None
    parameter_count: int | None
    failure_reason: str | None
    health: TrialHealth | None = None
    pruned_epoch: int | None = Field(
        default=None, description="Pruned by search.pruner: the epoch (from 1) it stopped at."
    )
    pruned_against: float | None = Field(
        default=None,
        description="Pruned by search.pruner: the value its objective was compared against "
        "there (the median, or the cut-off of its rung).",
    )
    confirms: int | None = Field(
        default=None,
        description="a confirmation run (search.confirm): the trial whose configuration it "
        "trains again with another seed",
    )
    confirm_seed: int | None = None
    timings: TrialTimings

    @model_validator(mode="before")
    @classmethod
    def _timings_from_row(cls, data: Any) -> Any:
        # The row keeps its timings as columns; the body groups them.
        if isinstance(data, Trial):
            return {
                **{name: getattr(data, name) for name in cls.model_fields if name != "timings"},
                **({"epochs": data.epochs} if "epochs" in cls.model_fields else {}),
                "timings": TrialTimings.model_validate(data),
            }
        return data


class EpochPublic(FromRow):
    """Metrics of one epoch of one execution."""

    execution: int
    epoch: int
    metrics: dict[str, Any]
    learning_rate: float | None
    duration_s: float
    health: EpochHealth | None = None


class TrialDetail(TrialPublic):
    """A trial with its epoch-by-epoch history."""

    epochs: list[EpochPublic]


class PredictRequest(BaseModel):
    """Rows to predict with one of a job's stored models."""

    model_config = ConfigDict(extra="forbid")

    rows: list[list[Any] | dict[str, Any]] = Field(
        min_length=1,
        description="Input rows, each of the model's input_shape (or flattened); for a job on an "
        "uploaded table, rows may instead be objects keyed by its column names, encoded as the "
        "upload was (text columns one-hot, a missing number its imputed median).",
    )
    rank: int = Field(default=1, ge=1, le=100, description="1 = the best stored model.")
    mc_samples: int = Field(
        default=0,
        ge=0,
        le=100,
        description="Monte Carlo dropout: average this many stochastic forward passes (0 = off).",
    )


class ModelRef(BaseModel):
    trial_number: int
    rank: int
    sha256: str


class PredictResponse(BaseModel):
    """Predicted classes (with probabilities) or values; ``std`` under MC dropout."""

    predictions: list[Any]
    probabilities: list[Any] | None = None
    probability_of: Any = Field(
        default=None,
        description="Binary tasks: the class each probability is of (its label for an uploaded "
        "dataset, else 1); a row is predicted as that class when its probability is >= 0.5.",
    )
    labels: list[Any] | None = None
    std: list[Any] | None = None
    model: ModelRef


class DatasetPublic(BaseModel):
    """A dataset a spec can name: built-in, or uploaded."""

    kind: Literal["builtin", "upload"] = "builtin"
    ref: str = Field(
        description="What a job spec's dataset.name is set to: the built-in's name, or upload:<id>."
    )
    id: str | None = Field(default=None, description="The upload's id (null for built-ins).")
    owner: str | None = Field(default=None, description="Who uploaded it (null for built-ins).")
    name: str
    source: str
    task: str
    input_shape: list[int]
    n_features: int
    n_classes: int
    rows: int
    description: str
    available_offline: bool


class DatasetDetail(DatasetPublic):
    """One dataset with what its upload recorded (null for built-ins)."""

    format: str | None = None
    size_bytes: int | None = Field(default=None, description="Size of the file as uploaded.")
    stored_bytes: int | None = Field(
        default=None, description="Size of the normalised arrays stored (counts for the quota)."
    )
    sha256: str | None = Field(default=None, description="SHA-256 of the file as uploaded.")
    class_labels: list[str] | None = None
    feature_names: list[str] | None = Field(
        default=None, description="Encoded feature columns, one-hot ones as column=value."
    )
    summary: dict[str, Any] | None = Field(
        default=None,
        description="rows, features, inferred_task, class_balance or target_stats, missing "
        "values, imputed medians, categorical columns; feature_stats (name, min, max, mean, std "
        "of the first 200 features), feature_stats_truncated, and target_histogram (edges and "
        "counts of 20 bins; null for classes). Uploads older than the statistics lack them.",
    )
    created_at: UtcDatetime | None = None


class QuotaUse(BaseModel):
    """One quota: the limit and what is used of it."""

    limit: int
    used: int


class Account(BaseModel):
    """Who the caller is and where it stands against its quotas."""

    owner: str
    auth_mode: Literal["open", "keys"]
    key_id: str | None = Field(description="The API key used (null in the open mode).")
    active_jobs: QuotaUse = Field(description="Queued or running jobs.")
    pending_trials: QuotaUse = Field(description="Trials the active jobs still have to run.")
    stored_bytes: QuotaUse = Field(description="Uploaded datasets, models and checkpoints.")


class Limits(RootModel[dict[str, int]]):
    """The hard limits every spec is checked against, by name (e.g. ``max_trials``)."""


class Health(BaseModel):
    """Reachability of what the API depends on."""

    status: Literal["ok", "unavailable"]
    database: str
    broker: str
    version: str


class FieldProblem(BaseModel):
    """One problem of a 422: the dotted field, what is wrong, and the limit broken (if any)."""

    field: str = Field(examples=["search.max_trials"])
    message: str
    limit: Any = None
    type: str = Field(examples=["less_than_equal"])


class ErrorBody(BaseModel):
    """Every error: a stable code and a detail (a message, or for 422 a list of problems).
    A 429 adds the quota or rate ``limit`` it met (and a quota's ``quota`` and ``used``)."""

    model_config = ConfigDict(extra="allow")

    error: str = Field(examples=["not_found"])
    detail: str | list[FieldProblem]


#: the statuses whose answer says when to try again.
RETRIED_STATUSES = (429, 503)
RETRY_AFTER_HEADER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 0},
    }
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the given error statuses (with ``Retry-After`` where
    the service sends it)."""
    return {
        status: {
            "model": ErrorBody,
            **({"headers": RETRY_AFTER_HEADER} if status in RETRIED_STATUSES else {}),
        }
        for status in statuses
    }


class JobSplitRows(BaseModel):
    """The rows a job trained and validated on: 0-based indices into the dataset's rows in its
    own order (a Keras built-in's training set, whose test set is never used; scikit-learn's
    array; an upload's rows in file order)."""

    rows_total: int = Field(description="Rows the dataset has.")
    train: list[int] = Field(description="The training split's rows, in training order.")
    validation: list[int] = Field(description="The validation split's rows.")


class JobPage(Page[JobPublic]):
    """One page of the caller's jobs, newest first."""


class TrialPage(Page[TrialPublic]):
    """One page of a job's leaderboard."""


class DatasetPage(Page[DatasetPublic]):
    """One page of the datasets a spec can name."""
