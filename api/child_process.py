"""One lazily spawned helper process of the API, for work that must not hold the API's own
interpreter: predictions (TensorFlow stays out of the API process) and the dashboard's job pages
(CPU-bound builds would make every request thread wait for the interpreter lock).

*Spawned*, never forked: the API process runs threads (uvicorn's, the request threadpool), and
a fork copies their locks in whatever state they were. The child exits with its parent, even a
parent killed outright (it watches the parent's sentinel), and ignores Ctrl-C (the terminal
sends it to the whole process group; the API stops the child when it shuts down)."""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any

#: seconds the app's shutdown waits for a child process to exit before killing it.
SHUTDOWN_WAIT_S = 5.0


def _exit_with_parent() -> None:
    parent = multiprocessing.parent_process()
    if parent is not None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)


def _child_start(initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    """Runs first in the child: ignore Ctrl-C, exit when the parent is gone, then
    ``initializer(*initargs)``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, name="parent-watch", daemon=True).start()
    if initializer is not None:
        initializer(*initargs)


class SpawnedChild:
    """A one-process ``ProcessPoolExecutor`` (spawn context), created on first use and created
    again after it broke (its process died), timed out, or was shut down."""

    def __init__(
        self, initializer: Callable[..., None] | None = None, initargs: tuple[Any, ...] = ()
    ) -> None:
        self._initargs = (initializer, initargs)
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _current(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_child_start,
                    initargs=self._initargs,
                )
            return self._executor

    def _submitted(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, Future[Any]]:
        """``(executor, future)``; a child that died while idle is replaced first."""
        executor = self._current()
        try:
            return executor, executor.submit(fn, *args)
        except RuntimeError:  # BrokenProcessPool (it died idle), or shut down meanwhile
            self._drop(executor, kill=False)
            executor = self._current()
            return executor, executor.submit(fn, *args)

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Run ``fn(*args)`` in the child without waiting (a warm-up)."""
        return self._submitted(fn, args)[1]

    def call(self, fn: Callable[..., Any], *args: Any, timeout_s: float) -> Any:
        """``fn(*args)`` in the child. ``concurrent.futures.TimeoutError`` after ``timeout_s``
        (the child is killed: nothing else frees it); ``BrokenProcessPool`` if the child died
        meanwhile (it is replaced at the next call). Other exceptions are ``fn``'s own."""
        executor, future = self._submitted(fn, args)
        try:
            return future.result(timeout=timeout_s)
        except FutureTimeout:
            self._drop(executor, kill=True)
            raise
        except (BrokenProcessPool, CancelledError) as exc:  # cancelled: another call's drop
            self._drop(executor, kill=False)
            raise BrokenProcessPool(str(exc) or "the child process died") from exc

    def processes(self) -> list[Any]:
        """The child's live ``multiprocessing`` process objects (none before its first use)."""
        with self._lock:
            executor = self._executor
        return _processes(executor) if executor is not None else []

    def _drop(self, executor: ProcessPoolExecutor, kill: bool, wait_s: float = 0.0) -> None:
        """Stop ``executor``'s process if it is still the current one (a concurrent caller may
        have replaced it already: the new one is left alone): killed at once (a stuck call),
        else asked to stop and waited for up to ``wait_s`` seconds before it is killed."""
        with self._lock:
            if self._executor is not executor:
                return
            self._executor = None
        processes = _processes(executor)
        if kill:
            for process in processes:
                process.kill()
        executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            if not exited(process, wait_s):
                process.kill()
                exited(process, 5)

    def shutdown(self) -> None:
        """Stop the child (app shutdown) and wait for it: nothing may outlive the API, neither
        the child nor the resource tracker it keeps alive."""
        with self._lock:
            executor = self._executor
        if executor is not None:
            self._drop(executor, kill=False, wait_s=SHUTDOWN_WAIT_S)


def exited(process: Any, wait_s: float) -> bool:
    """Whether ``process`` exited within ``wait_s`` seconds. Read from its sentinel, not from
    ``is_alive()``: the executor's own thread reaps its processes too, and whichever of two
    threads loses that race sees "alive" (``waitpid`` fails with ECHILD) until the winner has
    stored the exit code."""
    return bool(multiprocessing.connection.wait([process.sentinel], wait_s))


def _processes(executor: ProcessPoolExecutor) -> list[Any]:
    return list((getattr(executor, "_processes", None) or {}).values())
