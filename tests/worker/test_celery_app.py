"""The Celery app: settings for long ML tasks, no TensorFlow in the parent, the reaper, the warm
shutdown hand-back."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from db.broker import DISPATCH_JOB_TASK, RUN_TRIAL_TASK
from db.engine import session_scope
from db.models import Job, JobStatus, Trial, TrialStatus
from db.settings import Settings, get_settings
from tests.worker.helpers import get_job, get_trials


def test_importing_the_app_tasks_and_reaper_loads_no_tensorflow() -> None:
    code = (
        "import sys, worker.celery_app, worker.tasks, worker.reaper\n"
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


def test_tasks_are_registered_with_late_ack_and_reject_on_worker_lost() -> None:
    from worker.celery_app import app
    from worker.tasks import dispatch_job, run_trial

    for task, name in ((dispatch_job, DISPATCH_JOB_TASK), (run_trial, RUN_TRIAL_TASK)):
        assert name in app.tasks and task.name == name
        assert task.acks_late is True
        assert task.reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_max_tasks_per_child == get_settings().worker_max_tasks_per_child
    # Celery counts a pool process's memory bound in KiB
    memory_kib = get_settings().worker_max_memory_per_child_mb * 1024
    assert app.conf.worker_max_memory_per_child == memory_kib
    # A recycled pool process's replacement imports TensorFlow before it reports ready.
    assert app.conf.worker_proc_alive_timeout == get_settings().worker_process_start_timeout_s
    assert app.conf.worker_proc_alive_timeout >= 60
    assert "worker.tasks" in app.conf.include


def test_redis_visibility_timeout_exceeds_the_trial_hard_time_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = _fresh_app(monkeypatch, "redis://127.0.0.1:6379/0")
    settings = get_settings()
    visibility = app.conf.broker_transport_options["visibility_timeout"]
    assert visibility > app.conf.task_time_limit == settings.trial_hard_time_limit_s
    assert app.conf.task_soft_time_limit == settings.trial_soft_time_limit_s
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit


@pytest.mark.parametrize(
    "values",
    [
        {"trial_hard_time_limit_s": 100, "broker_visibility_timeout_s": 100},
        {"trial_soft_time_limit_s": 200, "trial_hard_time_limit_s": 200},
        {"heartbeat_interval_s": 5, "stale_after_s": 5},
    ],
)
def test_settings_refuse_limits_that_do_not_nest(values: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        Settings(**values)


def _add_job(status: JobStatus, *, created_ago_s: float = 0, **fields: object) -> str:
    now = datetime.now(UTC)
    with session_scope() as session:
        job = Job(
            spec={"dataset": {"name": "digits"}, "search": {}},
            algorithm="random",
            dataset="digits",
            objective="val_accuracy",
            direction="max",
            max_trials=4,
            status=status,
            created_at=now - timedelta(seconds=created_ago_s),
            **fields,
        )
        session.add(job)
        session.flush()
        return job.id


def _add_trial(job_id: str, number: int, status: TrialStatus, **fields: object) -> int:
    with session_scope() as session:
        trial = Trial(job_id=job_id, number=number, status=status, hyperparameters={}, **fields)
        session.add(trial)
        session.flush()
        return trial.id


def _ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


def test_reaper_requeues_abandoned_trials_and_resends_lost_messages(sqlite_url: str) -> None:
    from worker.reaper import reap_once

    stale = get_settings().stale_after_s
    running = _add_job(JobStatus.RUNNING, heartbeat_at=_ago(1))
    dead = _add_trial(running, 0, TrialStatus.RUNNING, worker="h:1:2", heartbeat_at=_ago(stale * 2))
    alive = _add_trial(running, 1, TrialStatus.RUNNING, worker="h:1:3", heartbeat_at=_ago(1))
    lost = _add_trial(running, 2, TrialStatus.WAITING, enqueued_at=_ago(stale * 2))
    fresh = _add_trial(running, 3, TrialStatus.WAITING, enqueued_at=_ago(1))
    lost_submission = _add_job(JobStatus.QUEUED, created_ago_s=stale * 2)
    _add_job(JobStatus.QUEUED, created_ago_s=1)  # just submitted
    silent = _add_job(JobStatus.RUNNING, heartbeat_at=_ago(stale * 2))  # nothing active
    done = _add_job(JobStatus.SUCCEEDED, heartbeat_at=_ago(stale * 2))
    _add_trial(done, 0, TrialStatus.WAITING, enqueued_at=_ago(stale * 2))  # final job: left

    sent: list[tuple[str, object]] = []
    report = reap_once(lambda task, arg: sent.append((task, arg)))
    assert report.requeued == [dead] and report.resent == [lost]
    assert sorted(sent, key=str) == sorted(
        [
            (RUN_TRIAL_TASK, dead),
            (RUN_TRIAL_TASK, lost),
            (DISPATCH_JOB_TASK, lost_submission),
            (DISPATCH_JOB_TASK, silent),
        ],
        key=str,
    )
    by_id = {t.id: t for t in get_trials(running)}
    assert by_id[dead].status is TrialStatus.WAITING and by_id[dead].worker is None
    assert by_id[alive].status is TrialStatus.RUNNING and by_id[fresh].status is TrialStatus.WAITING
    # each re-send bumps its clock: the next pass sends nothing
    sent.clear()
    reap_once(lambda task, arg: sent.append((task, arg)))
    assert sent == []


def test_reaper_requeues_at_once_a_trial_whose_pool_process_is_gone(sqlite_url: str) -> None:
    from worker.reaper import reap_once, worker_prefix

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # a pid that no longer exists
    job = _add_job(JobStatus.RUNNING, heartbeat_at=_ago(1))
    gone = _add_trial(
        job, 0, TrialStatus.RUNNING, worker=f"{worker_prefix()}{child.pid}", heartbeat_at=_ago(1)
    )
    mine_alive = _add_trial(
        job, 1, TrialStatus.RUNNING, worker=f"{worker_prefix()}{os.getpid()}", heartbeat_at=_ago(1)
    )
    report = reap_once(lambda task, arg: None)
    assert report.requeued == [gone]
    statuses = {t.id: t.status for t in get_trials(job)}
    assert statuses == {gone: TrialStatus.WAITING, mine_alive: TrialStatus.RUNNING}


def test_reaper_settles_cancelled_jobs(sqlite_url: str) -> None:
    from worker.reaper import reap_once

    idle = _add_job(JobStatus.RUNNING, cancel_requested=True, heartbeat_at=_ago(1))
    waiting = _add_trial(idle, 0, TrialStatus.WAITING, enqueued_at=_ago(1))
    busy = _add_job(JobStatus.RUNNING, cancel_requested=True, heartbeat_at=_ago(1))
    _add_trial(busy, 0, TrialStatus.RUNNING, worker="h:1:2", heartbeat_at=_ago(1))
    queued_later = _add_trial(busy, 1, TrialStatus.WAITING, enqueued_at=_ago(1))

    report = reap_once(lambda task, arg: None)
    assert report.cancelled == [idle]
    assert get_job(idle).status is JobStatus.CANCELLED
    assert get_trials(idle)[0].status is TrialStatus.CANCELLED and waiting
    # the running trial ends the job itself at its next epoch; its queued one never starts
    assert get_job(busy).status is JobStatus.RUNNING
    statuses = {t.id: t.status for t in get_trials(busy)}
    assert statuses[queued_later] is TrialStatus.CANCELLED


def test_warm_shutdown_asks_only_this_workers_trials_to_go_back(
    sqlite_url: str,
) -> None:
    from worker import celery_app
    from worker.reaper import worker_prefix

    job = _add_job(JobStatus.RUNNING)
    mine = _add_trial(job, 0, TrialStatus.RUNNING, worker=f"{worker_prefix()}99")
    other = _add_trial(job, 1, TrialStatus.RUNNING, worker=f"{worker_prefix(1)}99")
    celery_app._release_running_trials()
    flags = {t.id: t.release_requested for t in get_trials(job)}
    assert flags == {mine: True, other: False}


def test_embedded_broker_polls_often_enough_not_to_delay_trials() -> None:
    # A worker on the embedded broker: a real SQLAlchemy transport, one channel with prefetch 1.
    code = (
        "import worker.celery_app\n"
        "from kombu import Connection\n"
        "from db.broker import EMBEDDED_BUSY_POLLING_INTERVAL_S as BUSY\n"
        "from db.broker import EMBEDDED_POLLING_INTERVAL_S as IDLE\n"
        "with Connection(worker.celery_app.app.conf.broker_url) as connection:\n"
        "    channel = connection.channel()\n"
        "    channel.basic_qos(0, 1, False)\n"
        "    transport = connection.transport\n"
        "    assert transport.polling_interval == IDLE <= 0.1, transport.polling_interval\n"
        "    channel.qos.append(object(), 1)  # a delivered, unacked message: a trial runs\n"
        "    assert transport.polling_interval == BUSY < IDLE, transport.polling_interval\n"
        "    channel.qos.ack(1)\n"
        "    assert transport.polling_interval == IDLE, transport.polling_interval\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_memory_bound_of_zero_never_recycles() -> None:
    from db.broker import celery_config

    config = celery_config(Settings(worker_max_memory_per_child_mb=0))
    assert config["worker_max_memory_per_child"] is None
    config = celery_config(Settings(worker_max_memory_per_child_mb=2048))
    assert config["worker_max_memory_per_child"] == 2048 * 1024
    with pytest.raises(ValidationError, match="worker_max_memory_per_child_mb"):
        Settings(worker_max_memory_per_child_mb=100)
