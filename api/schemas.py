"""Request and response bodies of the HTTP API (``XCreate`` in, ``XPublic`` out)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from db.models import Epoch, Job, JobStatus, Trial, TrialStatus
from search_spaces.schema import JobSpec

T = TypeVar("T")


def _utc(value: datetime | None) -> datetime | None:
    # SQLite hands timezone-aware columns back naive; they were written in UTC.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]

#: a job is submitted as its spec, nothing more.
JobCreate = JobSpec


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


class JobPublic(BaseModel):
    """A job as clients see it."""

    id: str
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
    progress: float = Field(ge=0.0, le=1.0, description="Trials finished / max_trials.")
    best_trial_number: int | None
    best_score: float | None
    warnings: list[JobWarning]
    dataset_info: dict[str, Any] | None
    error: str | None
    cancel_requested: bool
    created_at: UtcDatetime
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    spec: dict[str, Any]

    @classmethod
    def from_row(cls, job: Job) -> JobPublic:
        done = (job.trials_completed or 0) + (job.trials_failed or 0) + (job.trials_diverged or 0)
        if job.status == JobStatus.SUCCEEDED:
            progress = 1.0
        else:
            progress = min(1.0, done / job.max_trials) if job.max_trials else 0.0
        return cls(
            id=job.id,
            name=job.name,
            status=job.status,
            algorithm=job.algorithm,
            dataset=job.dataset,
            objective=job.objective,
            direction=job.direction,
            max_trials=job.max_trials,
            trials_completed=job.trials_completed or 0,
            trials_failed=job.trials_failed or 0,
            trials_diverged=job.trials_diverged or 0,
            progress=progress,
            best_trial_number=job.best_trial_number,
            best_score=job.best_score,
            warnings=[JobWarning.model_validate(w) for w in job.warnings or []],
            dataset_info=job.dataset_info,
            error=job.error,
            cancel_requested=bool(job.cancel_requested),
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            spec=job.spec,
        )


class TrialTimings(BaseModel):
    started_at: UtcDatetime | None
    finished_at: UtcDatetime | None
    duration_s: float | None
    fit_duration_s: float | None


class TrialPublic(BaseModel):
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
    timings: TrialTimings

    @classmethod
    def fields_from_row(cls, trial: Trial) -> dict[str, Any]:
        return {
            "number": trial.number,
            "status": trial.status,
            "hyperparameters": trial.hyperparameters or {},
            "score": trial.score,
            "best_epoch": trial.best_epoch,
            "epochs_run": trial.epochs_run or 0,
            "metrics": trial.metrics,
            "parameter_count": trial.parameter_count,
            "failure_reason": trial.failure_reason,
            "timings": TrialTimings(
                started_at=trial.started_at,
                finished_at=trial.finished_at,
                duration_s=trial.duration_s,
                fit_duration_s=trial.fit_duration_s,
            ),
        }

    @classmethod
    def from_row(cls, trial: Trial) -> TrialPublic:
        return cls(**cls.fields_from_row(trial))


class EpochPublic(BaseModel):
    """Metrics of one epoch of one execution."""

    execution: int
    epoch: int
    metrics: dict[str, Any]
    learning_rate: float | None
    duration_s: float

    @classmethod
    def from_row(cls, epoch: Epoch) -> EpochPublic:
        return cls(
            execution=epoch.execution,
            epoch=epoch.epoch,
            metrics=epoch.metrics,
            learning_rate=epoch.learning_rate,
            duration_s=epoch.duration_s,
        )


class TrialDetail(TrialPublic):
    """A trial with its epoch-by-epoch history."""

    epochs: list[EpochPublic]

    @classmethod
    def from_row(cls, trial: Trial) -> TrialDetail:
        return cls(
            **TrialPublic.fields_from_row(trial),
            epochs=[EpochPublic.from_row(e) for e in trial.epochs],
        )


class PredictRequest(BaseModel):
    """Rows to predict with one of a job's stored models."""

    model_config = ConfigDict(extra="forbid")

    rows: list[Any] = Field(
        min_length=1, description="Input rows, each of the model's input_shape (or flattened)."
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
    labels: list[Any] | None = None
    std: list[Any] | None = None
    model: ModelRef


class DatasetPublic(BaseModel):
    """One built-in dataset."""

    name: str
    source: str
    task: str
    input_shape: list[int]
    n_features: int
    n_classes: int
    rows: int
    description: str
    available_offline: bool


class Health(BaseModel):
    """Reachability of what the API depends on."""

    status: Literal["ok", "unavailable"]
    database: str
    broker: str
    version: str


class ErrorBody(BaseModel):
    """Every error: a stable code and a detail (a message, or a list of fields for 422)."""

    error: str
    detail: Any


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the given error statuses."""
    return {status: {"model": ErrorBody} for status in statuses}
