"""One lazily spawned helper process of the API, for work that must not hold the API's own
interpreter: predictions (TensorFlow stays out of the API process) and the dashboard's job pages
(CPU-bound builds would make every request thread wait for the interpreter lock).

*Spawned*, never forked: the API process runs threads (uvicorn's, the request threadpool), and
a fork copies their locks in whatever state they were."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

#: seconds the app's shutdown waits for a child process to exit before killing it.
SHUTDOWN_WAIT_S = 5.0


class SpawnedChild:
    """A one-process ``ProcessPoolExecutor`` (spawn context) created on first use and created
    again after ``discard`` (a crash, a stuck call)."""

    def __init__(self, initializer: Callable[[], None] | None = None) -> None:
        self._initializer = initializer
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` in the child (started now if it is not running)."""
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=self._initializer,
                )
            return self._executor.submit(fn, *args)

    def processes(self) -> list[Any]:
        """The child's live ``multiprocessing`` process objects (none before its first use)."""
        with self._lock:
            executor = self._executor
        if executor is None:
            return []
        return list((getattr(executor, "_processes", None) or {}).values())

    def discard(self, kill: bool, wait_s: float = 0.0) -> None:
        """Drop the child process: killed at once (a stuck call), else asked to stop and waited
        for up to ``wait_s`` seconds before it is killed. The next ``submit`` spawns another."""
        processes = self.processes()
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is None:
            return
        if kill:  # a stuck call: nothing else frees the process
            for process in processes:
                process.kill()
        executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.join(wait_s)
            if process.is_alive():
                process.kill()
                process.join(5)

    def shutdown(self) -> None:
        """Stop the child (app shutdown) and wait for it: nothing may outlive the API, neither
        the child nor the resource tracker it keeps alive."""
        self.discard(kill=False, wait_s=SHUTDOWN_WAIT_S)
