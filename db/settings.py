"""Service configuration, read from environment variables prefixed ``HPSEARCH_``.

The defaults are the embedded single-machine setup: a SQLite database and a Celery broker kept in
another SQLite file, both under ``HPSEARCH_DATA_DIR``. Point ``HPSEARCH_DATABASE_URL`` at
PostgreSQL and ``HPSEARCH_BROKER_URL`` at Redis to scale out; the code is the same.

On PostgreSQL any number of worker processes, on any number of machines, share the trials of
every job (the oracle is read and written under a row lock). On the embedded SQLite default a
single worker process (``hpsearch worker --concurrency 1``) is the supported setup: SQLite takes
one writer at a time, and the embedded broker does not redeliver the message of a worker that
died (the reaper re-sends it after ``stale_after_s``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from db import log_setup
from db.log_setup import LogFormat
from search_spaces.limits import MAX_ROWS

#: a smaller recycling bound would replace a worker process after every trial
MIN_RECYCLE_MEMORY_MB = 1024


class Settings(BaseSettings):
    """All knobs of the service. Every field maps to ``HPSEARCH_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="HPSEARCH_", extra="ignore")

    data_dir: Path = Field(
        default=Path("hpsearch-data"),
        description="Where the embedded defaults keep the SQLite database and broker.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL. Default: sqlite file in data_dir. "
        "Example: postgresql+psycopg://user@host:5432/hpsearch",
    )
    broker_url: str | None = Field(
        default=None,
        description="Celery broker URL. Default: kombu's SQLAlchemy transport on a sqlite file in "
        "data_dir. Example: redis://localhost:6379/0",
    )
    queue_name: str = Field(
        default="hpsearch", description="Celery queue the jobs' and trials' messages are sent to."
    )
    broker_visibility_timeout_s: int = Field(
        default=2 * 3600,
        description="Redis visibility timeout; must exceed the longest trial "
        "(trial_hard_time_limit_s), or a trial's message would be delivered twice while it runs.",
    )
    trial_soft_time_limit_s: int = Field(
        default=3600,
        ge=10,
        description="A trial still training after this is stopped and marked failed.",
    )
    trial_hard_time_limit_s: int = Field(
        default=3600 + 300,
        ge=20,
        description="The worker process running a trial is killed after this (the trial is "
        "then re-run, up to max_trial_attempts).",
    )
    worker_max_tasks_per_child: int = Field(
        default=1000,
        ge=1,
        description="Recycle a worker process after this many tasks (trials, mostly): a fresh "
        "process re-imports TensorFlow (3-6 s), so this is a safety net, not a routine; memory "
        "is bounded by worker_max_memory_per_child_mb.",
    )
    worker_max_memory_per_child_mb: int = Field(
        default=3072,
        ge=0,
        description="Recycle a worker process, after its trial, once its peak resident memory "
        "(getrusage's maxrss, as Celery measures it) passed this many MB; 0: never, else at "
        "least 1024. A process holds ~0.8 GB after its first trial (TensorFlow itself) and no "
        "more after 100 small ones; a job whose trials need more than this recycles the "
        "process after each of them, so keep it above the largest trial's footprint.",
    )
    worker_process_start_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="A new worker pool process (a replacement after recycling, too) that has not "
        "reported ready after this is killed and replaced. It imports TensorFlow first (3-6 s "
        "measured on 2 cores, more under load); Celery's default of 4 s would kill every replacement.",
    )
    max_concurrent_trials_per_job: int = Field(
        default=4,
        ge=1,
        description="At most this many trials of one job are queued or running at once; the "
        "rest of the workers serve other jobs (fair sharing).",
    )
    max_trial_attempts: int = Field(
        default=3,
        ge=1,
        description="A trial whose worker was lost this many times (a poison trial: its pool "
        "process exited, or it stopped renewing its lease while the database was up) is marked "
        "failed and the job goes on. A database outage never counts.",
    )
    tf_threads: int = Field(
        default=1,
        ge=0,
        description="TensorFlow intra/inter-op threads per worker process, and the size of "
        "tf.data's pool for a trial's batches (0 = TF default).",
    )
    heartbeat_interval_s: float = Field(
        default=10.0, gt=0, description="How often a worker proves it still trains its trial."
    )
    stale_after_s: float = Field(
        default=120.0,
        gt=0,
        description="A running trial whose lease (heartbeat) is older than this goes back to the "
        "queue (its worker was lost), except within this long of the database coming back after "
        "an outage; a waiting trial whose message is older than this is sent again.",
    )
    reaper_interval_s: float = Field(
        default=15.0,
        gt=0,
        description="How often each worker's main process looks for stale trials, lost messages "
        "and cancelled jobs to settle.",
    )
    db_retry_budget_s: float = Field(
        default=300.0,
        ge=0,
        description="How long a worker keeps retrying a database step that failed for a "
        "transient reason (connection refused or dropped, server starting up or shutting down, "
        "deadlock, serialization failure, lock timeout), with exponential backoff capped at 2 s. "
        "A trial pauses meanwhile and goes on when the database is back; past this, it is handed "
        "back to the queue without counting an attempt, and a dispatch is re-sent by the reaper.",
    )
    api_db_retry_budget_s: float = Field(
        default=5.0,
        ge=0,
        description="How long an API request retries a transient database error before it "
        "answers 503 with Retry-After.",
    )
    db_lock_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="PostgreSQL lock_timeout: the longest a statement waits for a row lock (a "
        "job's, held while its next trials are chosen) before its step is retried.",
    )
    db_idle_in_transaction_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="PostgreSQL idle_in_transaction_session_timeout: a session that holds a "
        "transaction open without a statement for this long (a frozen or dead worker holding a "
        "row) is cut off and its locks released; its work is retried. Transactions that run a "
        "search algorithm's step have search_step_timeout_s instead.",
    )
    search_step_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="How long a worker that froze (stopped, swapped out) while it held a job's "
        "search (learning new results, proposing the next trials) keeps it before the server "
        "cuts it off and releases it. A live worker's step is kept alive however slow (a "
        "Bayesian proposal takes seconds on a busy machine), up to 16 times this bound. Other "
        "jobs are never held up.",
    )
    broker_connect_timeout_s: float = Field(
        default=3.0, gt=0, description="How long a submission waits for the broker before a 503."
    )
    max_request_bytes: int = Field(
        default=1_000_000, ge=1024, description="Largest JSON body accepted."
    )
    max_upload_bytes: int = Field(
        default=50_000_000,
        ge=1024,
        description="Largest dataset upload (the whole multipart body) POST /datasets accepts; "
        "larger ones get 413 before the body is read in full.",
    )
    max_upload_rows: int = Field(
        default=MAX_ROWS,
        ge=10,
        le=MAX_ROWS,
        description="Most rows an uploaded dataset may have (at most max_rows of the limits).",
    )
    max_upload_columns: int = Field(
        default=2000,
        ge=1,
        le=100_000,
        description="Most columns an uploaded file, and features its encoding, may have.",
    )
    max_predict_rows: int = Field(
        default=10_000, ge=1, description="Largest batch POST /predict takes."
    )
    predict_timeout_s: float = Field(
        default=120.0, gt=0, description="A prediction slower than this answers 504."
    )
    prewarm_predictor: bool = Field(
        default=True,
        description="Start the prediction process (and its TensorFlow import, seconds to tens "
        "of seconds) in the background when the API starts, so the first prediction does not "
        "wait for it. Off: started by the first prediction (saves its memory until then).",
    )
    dashboard_build_process: bool = Field(
        default=True,
        description="Build the dashboard's job pages (and their importance) in a process of "
        "their own beside the API, started by the first page, so a build's CPU work never holds "
        "the API's interpreter lock while other requests wait. Off: built in the API's request "
        "threads (saves that process's memory). An in-memory SQLite database always builds in "
        "the API.",
    )
    auth_mode: Literal["open", "keys"] = Field(
        default="open",
        description="keys: every route but /health needs `Authorization: Bearer <key>` (keys "
        "from `hpsearch keys create NAME`). open: no key, every request acts as owner `local` "
        "(the embedded single-user default; the API logs a warning when it starts so).",
    )
    quota_active_jobs: int = Field(
        default=10,
        ge=1,
        description="Most queued or running jobs per owner; one more gets 429 with Retry-After.",
    )
    quota_pending_trials: int = Field(
        default=2000,
        ge=1,
        description="Most trials an owner's queued and running jobs may still have to run "
        "(a submission that would pass it gets 429).",
    )
    quota_stored_bytes: int = Field(
        default=5_000_000_000,
        ge=0,
        description="Most bytes stored per owner: uploaded datasets (normalised), models and "
        "Hyperband checkpoints. Over it, uploads and submissions get 429; delete datasets or "
        "finished jobs to free space.",
    )
    quota_retry_after_s: int = Field(
        default=60,
        ge=1,
        description="Retry-After sent with a 429 for the job quotas (running jobs free up).",
    )
    requests_per_minute: int = Field(
        default=600,
        ge=1,
        description="Requests each API key may make per minute (moving window; `hpsearch keys "
        "quota OWNER --requests-per-minute N` sets an owner's own); one more gets 429 with "
        "Retry-After. Counted in Redis when the broker is Redis (shared by every API process), "
        "else in each API process.",
    )
    migrate_on_start: bool = Field(
        default=True, description="The API applies pending migrations when it starts."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO",
        description="Log level of the service's own loggers (API, workers, reaper), and the "
        "default of `hpsearch worker --loglevel`.",
    )

    log_format: LogFormat = Field(
        default="text",
        description="`text`, or `json`: one JSON object per line (time, level, logger, "
        "message) for a deployment's log collector, from the API, uvicorn and the workers.",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _time_limits_nest(self) -> Settings:
        # A Redis message redelivered while its trial still runs would be a wasted duplicate.
        if (
            not self.trial_soft_time_limit_s
            < self.trial_hard_time_limit_s
            < self.broker_visibility_timeout_s
        ):
            raise ValueError(
                "need trial_soft_time_limit_s < trial_hard_time_limit_s "
                "< broker_visibility_timeout_s"
            )
        if 0 < self.worker_max_memory_per_child_mb < MIN_RECYCLE_MEMORY_MB:
            raise ValueError(
                f"worker_max_memory_per_child_mb must be 0 (never) or at least "
                f"{MIN_RECYCLE_MEMORY_MB}: a worker process holds ~0.8 GB after one trial"
            )
        # A live worker must beat at least once before its trial counts as abandoned.
        if not self.heartbeat_interval_s < self.stale_after_s:
            raise ValueError("need heartbeat_interval_s < stale_after_s")
        return self

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to a SQLite file in ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'hpsearch.db').resolve()}"

    def resolved_broker_url(self) -> str:
        """The broker URL, defaulting to kombu's SQLAlchemy transport on a SQLite file."""
        if self.broker_url:
            return self.broker_url
        return f"sqla+sqlite:///{(self.data_dir / 'broker.db').resolve()}"

    @property
    def is_embedded_broker(self) -> bool:
        return self.resolved_broker_url().startswith("sqla+")

    def apply_log_level(self) -> None:
        """Set ``log_level`` and ``log_format`` on the service's logging (``db.log_setup``)."""
        log_setup.configure(self.log_level, self.log_format)

    def ensure_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)


@lru_cache
def get_settings() -> Settings:
    """Process-wide settings (tests clear the cache with ``get_settings.cache_clear()``)."""
    return Settings()
