"""A worker that has run 100 small trials holds no more memory than after 10, with its pool
process never recycled: Keras sessions are cleared per trial, and each trial's traced graphs are
dropped from TensorFlow's gradient registry (``worker.training.gradient_registry``), which kept
~5 MB of them per trial for the life of the process before."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from db.models import JobStatus
from tests.faults.helpers import cluster, job, submit, trials, wait_final

pytestmark = [pytest.mark.integration, pytest.mark.e2e, pytest.mark.timeout(600)]


def _children(parent: int) -> set[int]:
    """The processes whose parent is ``parent``."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == parent:
                found.add(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _tree_rss_mb(root: int) -> float:
    """Resident memory of a process and its children (the Celery main and pool processes)."""
    total = 0.0
    for pid in {root} | _children(root):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except (OSError, ValueError, IndexError):
            continue
    return total


def test_worker_memory_after_100_trials_is_no_more_than_after_10(
    tmp_path: Path, postgres_url: str, redis_url: str
) -> None:
    service = cluster(
        tmp_path,
        postgres_url,
        redis_url,
        HPSEARCH_WORKER_MAX_TASKS_PER_CHILD="1000000",
        HPSEARCH_WORKER_MAX_MEMORY_PER_CHILD_MB="0",
        HPSEARCH_MAX_CONCURRENT_TRIALS_PER_JOB="1",
    )
    spec = {
        "dataset": {"name": "digits", "max_rows": 100, "split_seed": 1},
        "model": {"depth": 1, "units": {"type": "int", "min": 4, "max": 400}},
        "optimizer": {"learning_rate": {"type": "float", "min": 1e-3, "max": 1e-2}},
        "training": {"epochs": 1, "batch_size": 32},
        "search": {"algorithm": "random", "max_trials": 100, "seed": 1},
    }
    samples: list[tuple[int, float]] = []  # (trials finished, worker tree RSS in MB)
    pool: set[int] = set()  # the worker's pool processes seen
    stop = threading.Event()
    try:
        service.start_api()
        service.start_worker("worker-1")
        root = service.processes["worker-1"].pid
        job_id = submit(service, spec)

        def sample() -> None:
            while not stop.wait(0.25):
                done = job(job_id).trials_completed
                samples.append((done, _tree_rss_mb(root)))
                pool.update(_children(root))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        final = wait_final(job_id, service, timeout=540)
        stop.set()
        sampler.join()
        assert final.status is JobStatus.SUCCEEDED, final.error
        assert len(trials(job_id)) == 100
        early = max(rss for done, rss in samples if done <= 10)
        late = max(rss for done, rss in samples if done >= 90)
        print(f"worker RSS: max {early:.0f} MB over trials 1-10, {late:.0f} MB over 90-100")
        assert late <= early + 25, (early, late)
        assert len(pool) == 1, f"the pool process was replaced: {sorted(pool)}"
    finally:
        stop.set()
        service.stop()
