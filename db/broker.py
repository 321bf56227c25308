"""Celery configuration shared by the API (which only sends tasks, by name) and the workers.

Kept free of TensorFlow and of ``worker`` imports so the API can enqueue without loading either.
"""

from __future__ import annotations

from typing import Any

from db.settings import Settings

#: hand out a job's next trials (up to its concurrency cap), or end the job. Args: job id.
#: The API sends it at submission; workers send it again themselves when needed.
DISPATCH_JOB_TASK = "hpsearch.dispatch_job"
#: claim and train one trial, then dispatch the job's next ones. Args: trial row id.
RUN_TRIAL_TASK = "hpsearch.run_trial"


#: seconds between the embedded broker's polls of its table while the worker has room for a
#: message. An idle worker used 1.7% of a core at 0.1 s, 2.1-2.6% at 0.05 s and 3.9% at 0.02 s
#: (2 cores, 30 s each).
EMBEDDED_POLLING_INTERVAL_S = 0.05
#: seconds between checks while the worker holds all the messages it may (a trial is running).
#: kombu makes no query then, so checking often is cheap, and the next trial's message is read
#: within this long of the last one's ack instead of half an idle interval later on average.
EMBEDDED_BUSY_POLLING_INTERVAL_S = 0.005


def _embedded_polling_interval(transport: Any) -> float:
    busy = any(not channel.qos.can_consume() for channel in transport.channels)
    return EMBEDDED_BUSY_POLLING_INTERVAL_S if busy else EMBEDDED_POLLING_INTERVAL_S


def tune_embedded_transport() -> None:
    """Make kombu's SQLAlchemy transport poll every ``EMBEDDED_POLLING_INTERVAL_S`` for new
    messages, and check every ``EMBEDDED_BUSY_POLLING_INTERVAL_S`` while a trial runs.

    It polls its table every 1 s by default, so each trial waited half a second on average for
    its message. The usual knob, the ``polling_interval`` transport option, cannot be used: this
    transport passes its options on to ``create_engine``, which rejects it; so the interval
    becomes a property of the transport class, which kombu reads at the start of each wait for
    messages (Celery waits at most 2 s at a time). Called by the worker (the consumer) on the
    embedded broker only.
    """
    from kombu.transport.sqlalchemy import Transport

    Transport.polling_interval = property(_embedded_polling_interval)


def celery_config(settings: Settings) -> dict[str, Any]:
    """Celery settings suited to long ML tasks, for the configured broker."""
    broker_url = settings.resolved_broker_url()
    if settings.is_embedded_broker:
        settings.ensure_data_dir()
    transport_options: dict[str, Any] = {}
    if broker_url.startswith(("redis://", "rediss://")):
        # A message not acked within the visibility timeout is redelivered: it must outlast the
        # longest trial (late acks: a trial's message is acked when the trial ends).
        transport_options["visibility_timeout"] = settings.broker_visibility_timeout_s
    return {
        "broker_url": broker_url,
        "broker_transport_options": transport_options,
        "broker_connection_retry_on_startup": True,
        # Results live in the database; Celery's result backend is not used.
        "task_ignore_result": True,
        "result_backend": None,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_default_queue": settings.queue_name,
        "task_routes": {
            DISPATCH_JOB_TASK: {"queue": settings.queue_name},
            RUN_TRIAL_TASK: {"queue": settings.queue_name},
        },
        # Ack after the task ran, and requeue if the worker process died mid-task (the trial's
        # claim in the database makes the redelivered copy a no-op while the trial is owned).
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # One message per worker process at a time: a long trial must not hold back others.
        "worker_prefetch_multiplier": 1,
        # Recycling a pool process costs a TensorFlow import: only past a memory bound, or
        # after many tasks (trials) as a safety net.
        "worker_max_tasks_per_child": settings.worker_max_tasks_per_child,
        "worker_max_memory_per_child": settings.worker_max_memory_per_child_mb * 1024 or None,
        "worker_proc_alive_timeout": settings.worker_process_start_timeout_s,
        "task_soft_time_limit": settings.trial_soft_time_limit_s,
        "task_time_limit": settings.trial_hard_time_limit_s,
        "worker_hijack_root_logger": False,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
    }
