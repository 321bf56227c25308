"""SQLAlchemy 2 models: the single source of truth shared by the API and the workers."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from db.values import new_id, utcnow
from search_spaces.direction import Direction


class Base(DeclarativeBase):
    type_annotation_map: ClassVar = {dict[str, Any]: JSON, list[Any]: JSON}


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class StopCause(enum.StrEnum):
    """What ended a search (``jobs.ended_by``), named after the spec's fields."""

    #: every trial it planned ran (``search.max_trials``, a grid's points, Hyperband's rounds)
    MAX_TRIALS = "max_trials"
    TIME_LIMIT = "time_limit_s"
    TARGET = "target"
    PATIENCE = "patience_trials"
    CANCELLED = "cancelled"


class TrialStatus(enum.StrEnum):
    #: created by the job's oracle and sent to the queue; no worker has started it yet.
    WAITING = "waiting"
    RUNNING = "running"
    COMPLETED = "completed"
    #: loss became NaN/inf; never counted as best.
    DIVERGED = "diverged"
    #: an exception while building or training (bad combination, out of memory...).
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: stopped early as not worth finishing (a hopeless one: ``training.stop_hopeless``); it
    #: keeps its best epoch's score, which informs the search, and is never counted as best.
    PRUNED = "pruned"

    @property
    def is_active(self) -> bool:
        """Waiting or running: the trial still counts against its job's concurrency cap."""
        return self in (TrialStatus.WAITING, TrialStatus.RUNNING)

    @property
    def informs_search(self) -> bool:
        """Completed, diverged, failed or pruned: a verdict the search algorithm learns from
        (a cancelled trial has none)."""
        return self in (
            TrialStatus.COMPLETED, TrialStatus.DIVERGED, TrialStatus.FAILED, TrialStatus.PRUNED
        )  # fmt: skip

    @property
    def is_scored(self) -> bool:
        """Completed or pruned: it trained and has a score (a pruned one is never best)."""
        return self in (TrialStatus.COMPLETED, TrialStatus.PRUNED)


def _enum(cls: type[enum.Enum], length: int = 16) -> Enum:
    # Store the lowercase values, as plain strings (no native PG enum: easier migrations).
    return Enum(
        cls,
        values_callable=lambda e: [m.value for m in e],
        native_enum=False,
        length=length,
        create_constraint=False,
    )


#: the owner of everything created in the open (no API key) mode, and of rows older than owners.
OPEN_MODE_OWNER = "local"


class Owner(Base):
    """Who jobs and datasets belong to: the owner named by an API key. Quota columns left null
    take the service-wide defaults (``HPSEARCH_QUOTA_*``)."""

    __tablename__ = "owners"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    quota_active_jobs: Mapped[int | None] = mapped_column(Integer)
    quota_pending_trials: Mapped[int | None] = mapped_column(Integer)
    quota_stored_bytes: Mapped[int | None] = mapped_column(BigInteger)
    requests_per_minute: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Base):
    """A bearer token ``hps_<id>_<secret>``: only the secret's SHA-256 is stored."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    owner: Mapped[str] = mapped_column(ForeignKey("owners.name", ondelete="CASCADE"), index=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Job(Base):
    """One search: a spec, its state, and its best trial so far."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(
        String(64), default=OPEN_MODE_OWNER, server_default=OPEN_MODE_OWNER, index=True
    )
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[JobStatus] = mapped_column(
        _enum(JobStatus), default=JobStatus.QUEUED, index=True
    )
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    warnings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    algorithm: Mapped[str] = mapped_column(String(16))
    dataset: Mapped[str] = mapped_column(String(100))
    objective: Mapped[str] = mapped_column(String(64))
    direction: Mapped[Direction] = mapped_column(_enum(Direction, length=3))
    max_trials: Mapped[int] = mapped_column(Integer)
    trials_completed: Mapped[int] = mapped_column(Integer, default=0)
    trials_failed: Mapped[int] = mapped_column(Integer, default=0)
    trials_diverged: Mapped[int] = mapped_column(Integer, default=0)
    trials_pruned: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    best_trial_number: Mapped[int | None] = mapped_column(Integer)
    best_score: Mapped[float | None] = mapped_column(Float)
    #: seeded split and preprocessing facts recorded by the worker (rows, features, split seed...).
    dataset_info: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    #: what ended the search (``StopCause``): its trials ran out, its time limit, its target
    #: reached, its patience; or it was cancelled. Null while it runs, or when an error failed
    #: the job (a job whose trials all failed still says what ended its search).
    ended_by: Mapped[str | None] = mapped_column(String(32))
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Keras Tuner oracle state (JSON), so a restarted worker resumes the search. Megabytes for
    #: a long search, and only the workers' dispatcher reads it: loaded on first access, never
    #: by the API's reads of the job.
    oracle_state: Mapped[dict[str, Any] | None] = mapped_column(JSON, deferred=True)
    #: which worker holds the job, and when it last proved alive.
    worker: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    trials: Mapped[list[Trial]] = relationship(
        back_populates="job", cascade="all, delete-orphan", order_by="Trial.number"
    )

    @hybrid_property
    def trials_done(self) -> int:
        """Trials that ended with a verdict (completed, failed, diverged, pruned): what counts
        against ``max_trials``. In SQL too (``Job.trials_done`` in a query)."""
        return (
            self.trials_completed + self.trials_failed + self.trials_diverged + self.trials_pruned
        )


class Trial(Base):
    """One configuration tried by a job (averaged over its executions)."""

    __tablename__ = "trials"
    __table_args__ = (UniqueConstraint("job_id", "number", name="uq_trial_job_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    #: 0-based, in the order the oracle handed the trials out (Keras Tuner's trial id).
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[TrialStatus] = mapped_column(
        _enum(TrialStatus), default=TrialStatus.RUNNING, index=True
    )
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    score: Mapped[float | None] = mapped_column(Float)
    best_epoch: Mapped[int | None] = mapped_column(Integer)
    epochs_run: Mapped[int] = mapped_column(Integer, default=0)
    #: the metrics of the best epoch (averaged over executions).
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    parameter_count: Mapped[int | None] = mapped_column(Integer)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    #: the verdicts on the trial's training health (``health.verdicts``) and the baseline
    #: they were judged against: ``{"verdicts": [{code, evidence, remedy}], "baseline": x}``
    health: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    #: a trial stopped by the job's pruner (``search.pruner``): the epoch it was stopped at
    #: (counted from 1) and the value its objective was compared against there.
    pruned_epoch: Mapped[int | None] = mapped_column(Integer)
    pruned_against: Mapped[float | None] = mapped_column(Float)
    #: a confirmation run (``search.confirm``): the number of the trial whose configuration it
    #: trains again, and its seed (0, 1...); null for the search's own trials.
    confirms: Mapped[int | None] = mapped_column(Integer)
    confirm_seed: Mapped[int | None] = mapped_column(Integer)
    #: when the search algorithm proposed it, and how long that took (seconds).
    proposed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    proposal_s: Mapped[float | None] = mapped_column(Float)
    #: when the current (last) attempt started; null while the trial is waiting.
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_s: Mapped[float | None] = mapped_column(Float)
    fit_duration_s: Mapped[float | None] = mapped_column(Float)
    #: how many times a worker claimed the trial (a warm-shutdown hand-back does not count).
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: the claiming worker, ``host:main_pid:child_pid``; its lease is ``heartbeat_at``.
    worker: Mapped[str | None] = mapped_column(String(200))
    #: a fresh token per claim: every write of that attempt is conditional on it (null when the
    #: trial is not running).
    lease: Mapped[str | None] = mapped_column(String(32))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: when its run-trial message was last sent (the reaper re-sends lost ones).
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: set by a worker's warm shutdown: stop at the next epoch and go back to the queue.
    release_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: its result has been folded into the job's search algorithm (or needs not be).
    reported: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    job: Mapped[Job] = relationship(back_populates="trials")
    epochs: Mapped[list[Epoch]] = relationship(
        back_populates="trial",
        cascade="all, delete-orphan",
        order_by="(Epoch.execution, Epoch.epoch)",
    )


class Epoch(Base):
    """Metrics of one epoch of one execution of a trial, written as training runs."""

    __tablename__ = "epochs"
    __table_args__ = (
        UniqueConstraint("trial_id", "execution", "epoch", name="uq_epoch_trial_exec_epoch"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trial_id: Mapped[int] = mapped_column(ForeignKey("trials.id", ondelete="CASCADE"), index=True)
    execution: Mapped[int] = mapped_column(Integer, default=0)
    #: 0-based epoch index, as Keras counts them.
    epoch: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    learning_rate: Mapped[float | None] = mapped_column(Float)
    duration_s: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: the network's health on the probe batch after this epoch (``health.signals``); null
    #: when the epoch was not probed.
    health: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))

    trial: Mapped[Trial] = relationship(back_populates="epochs")


class ModelArtifact(Base):
    """A trained model in Keras's native ``.keras`` format: the job's top-k trials."""

    __tablename__ = "model_artifacts"
    __table_args__ = (UniqueConstraint("job_id", "trial_number", name="uq_artifact_job_trial"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    trial_number: Mapped[int] = mapped_column(Integer)
    #: 1 = best. Assigned when the job ends; null while the search still runs.
    rank: Mapped[int | None] = mapped_column(Integer)
    score: Mapped[float | None] = mapped_column(Float)
    format: Mapped[str] = mapped_column(String(16), default="keras")
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    #: what a client needs to call predict: task, input shape, class labels, feature names...
    signature: Mapped[dict[str, Any]] = mapped_column(JSON)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class JobSplit(Base):
    """Which rows of the dataset a job trained and validated on (recorded with its dataset
    facts by the first trial to load the data): indices into the dataset's rows in their
    original order, as little-endian int32 arrays."""

    __tablename__ = "job_splits"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    rows_total: Mapped[int] = mapped_column(Integer)
    train_rows: Mapped[bytes] = mapped_column(LargeBinary)
    validation_rows: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class WorkerProcess(Base):
    """A Celery worker's main process, as its reaper last said it was alive."""

    __tablename__ = "workers"

    #: ``host:pid``, the prefix of the ``worker`` of the trials its pool processes run.
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    hostname: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TrialCheckpoint(Base):
    """The weights a completed Hyperband trial ended with, so any worker can continue it in a
    later round (replaces per-machine scratch files). Deleted when the job ends."""

    __tablename__ = "trial_checkpoints"
    __table_args__ = (UniqueConstraint("job_id", "trial_number", name="uq_checkpoint_job_trial"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    trial_number: Mapped[int] = mapped_column(Integer)
    #: Keras ``.weights.h5`` bytes: plain arrays, written and read only by the workers.
    content: Mapped[bytes] = mapped_column(LargeBinary)
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class UploadedDataset(Base):
    """A dataset a user uploaded, normalised at upload time into numeric arrays.

    ``content`` is an ``.npz`` of ``x`` (float32, rows x input_shape) and ``y`` (int32 class
    indices into ``class_labels``, or float32 for regression), written and read with
    ``allow_pickle=False``. ``size_bytes``/``sha256`` describe the file as uploaded.
    A spec names it ``upload:<id>``.
    """

    __tablename__ = "uploaded_datasets"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    owner: Mapped[str] = mapped_column(
        String(64), default=OPEN_MODE_OWNER, server_default=OPEN_MODE_OWNER, index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    format: Mapped[str] = mapped_column(String(16))  # "csv" | "npz" | "parquet"
    task: Mapped[str] = mapped_column(String(16))
    input_shape: Mapped[list[Any]] = mapped_column(JSON)
    n_features: Mapped[int] = mapped_column(Integer)
    n_classes: Mapped[int] = mapped_column(Integer)
    class_labels: Mapped[list[Any] | None] = mapped_column(JSON)
    feature_names: Mapped[list[Any] | None] = mapped_column(JSON)
    rows: Mapped[int] = mapped_column(Integer)
    #: rows, features, class balance or target statistics, missing values, encoding.
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    #: size of ``content`` (the normalised arrays): what counts against the stored-bytes quota.
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


class ServiceMarker(Base):
    """A named moment every process of the service must know of, e.g. ``database_recovered``:
    when a worker last saw the database come back after an outage."""

    __tablename__ = "service_markers"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
