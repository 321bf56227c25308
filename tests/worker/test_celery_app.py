"""The Celery app: settings for long ML tasks, no TensorFlow in the parent, stale-job recovery."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from db.broker import RUN_JOB_TASK
from db.engine import session_scope
from db.models import Job, JobStatus
from db.settings import get_settings


def test_importing_the_app_and_tasks_loads_no_tensorflow() -> None:
    code = (
        "import sys, worker.celery_app, worker.tasks\n"
        "loaded = [m for m in ('tensorflow', 'keras', 'keras_tuner') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def _fresh_app(monkeypatch: pytest.MonkeyPatch, broker_url: str | None = None):  # type: ignore[no-untyped-def]
    if broker_url:
        monkeypatch.setenv("HPSEARCH_BROKER_URL", broker_url)
    get_settings.cache_clear()
    from celery import Celery

    from db.broker import celery_config

    app = Celery("hpsearch-test")
    app.conf.update(celery_config(get_settings()))
    return app


def test_task_is_registered_with_late_ack_and_reject_on_worker_lost() -> None:
    from worker.celery_app import app
    from worker.tasks import run_job

    assert RUN_JOB_TASK in app.tasks
    assert run_job.name == RUN_JOB_TASK
    assert run_job.acks_late is True
    assert run_job.reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert "worker.tasks" in app.conf.include


def test_redis_visibility_timeout_exceeds_the_hard_time_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = _fresh_app(monkeypatch, "redis://127.0.0.1:6379/0")
    settings = get_settings()
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    assert visibility > app.conf.task_time_limit == settings.job_hard_time_limit_s
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit


def _add_job(status: JobStatus, *, created_ago_s: float, heartbeat_ago_s: float | None) -> str:
    now = datetime.now(UTC)
    with session_scope() as session:
        job = Job(
            spec={"dataset": {"name": "digits"}},
            algorithm="random",
            dataset="digits",
            objective="val_accuracy",
            direction="max",
            max_trials=1,
            status=status,
            created_at=now - timedelta(seconds=created_ago_s),
            heartbeat_at=None
            if heartbeat_ago_s is None
            else now - timedelta(seconds=heartbeat_ago_s),
        )
        session.add(job)
        session.flush()
        return job.id


def test_worker_ready_resends_stale_and_lost_jobs(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worker import celery_app

    stale = get_settings().stale_after_s
    lost_queued = _add_job(JobStatus.QUEUED, created_ago_s=stale * 2, heartbeat_ago_s=None)
    dead_running = _add_job(JobStatus.RUNNING, created_ago_s=stale * 3, heartbeat_ago_s=stale * 2)
    _add_job(JobStatus.QUEUED, created_ago_s=1, heartbeat_ago_s=None)  # just submitted
    _add_job(JobStatus.RUNNING, created_ago_s=stale * 3, heartbeat_ago_s=1)  # alive
    _add_job(JobStatus.SUCCEEDED, created_ago_s=stale * 3, heartbeat_ago_s=stale * 2)  # final

    sent: list[tuple[str, list[str]]] = []
    monkeypatch.setattr(celery_app.app, "send_task", lambda name, args: sent.append((name, args)))
    celery_app._recover_on_start()
    assert sorted(sent) == sorted([(RUN_JOB_TASK, [lost_queued]), (RUN_JOB_TASK, [dead_running])])
