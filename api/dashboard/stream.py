"""A job page's updates pushed as server-sent events: each open page holds one connection, and
whenever the job's version moves it is told the new version, and fetches the page's data
(built, encoded and gzipped once per version for every viewer). A viewer costs no request per
second (polling did: 50 viewers polling a version every second took a status poll's p99 from
~40 to ~160 ms on 2 cores). Pushing the data itself was tried: every viewer then received
the whole page uncompressed at each trial's end (~70 KB at 100 trials, ~600 KB at 1000), where
the fetch is gzipped (a fifth of it) and skipped by a page that is busy or hidden.

A stream lasts at most ``STREAM_S``: the browser then reconnects by itself (``retry``), which
checks its key again and bounds how long a stopping API waits for open streams."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from api.dashboard import live
from api.dashboard.page_builder import PageBuilder
from db.settings import Settings

#: how long one stream stays open before the browser reconnects.
STREAM_S = 25.0
#: how often a stream looks at its job's version (shared by its viewers: ``live``).
CHECK_S = 0.5
#: how often a stream looks whether another has built the page it waits for.
BUILD_CHECK_S = 0.05
#: a comment line this often keeps proxies from closing a quiet stream.
KEEP_ALIVE_S = 10.0


async def job_events(
    request: Request,
    settings: Settings,
    builder: PageBuilder,
    owner: str,
    job_id: str,
    since: str | None,
) -> AsyncIterator[bytes]:
    """``event: version`` (``{"version": ...}``) whenever the job's version differs from the
    last one sent (first from ``since``: the version the page has), the page's data for it
    built before it is sent; ``event: end`` once the job is final (the page stops listening)."""
    yield b"retry: 1000\n\n"
    last, quiet_since = since, time.monotonic()
    deadline = time.monotonic() + STREAM_S
    while time.monotonic() < deadline and not await request.is_disconnected():
        version = live.cached_version(owner, job_id) or await _read_version(settings, owner, job_id)
        if version != last:
            await _built(settings, builder, owner, job_id, version)
            # the id comes back as Last-Event-ID when the browser reconnects
            data = json.dumps({"version": version})
            yield f"id: {version}\nevent: version\ndata: {data}\n\n".encode()
            last, quiet_since = version, time.monotonic()
            if live.is_final(version):
                yield b"event: end\ndata: {}\n\n"
                return
        elif time.monotonic() - quiet_since > KEEP_ALIVE_S:
            yield b": still here\n\n"
            quiet_since = time.monotonic()
        await asyncio.sleep(CHECK_S)


_reads: dict[tuple[str, str], asyncio.Future[str]] = {}


async def _read_version(settings: Settings, owner: str, job_id: str) -> str:
    """The job's version read from the database, once for all of its streams that find the
    cached one expired at the same moment (each would take a thread and a read: under load a
    read takes longer, more streams find it expired meanwhile, and the reads multiply)."""
    key = (owner, job_id)
    read = _reads.get(key)
    if read is None or read.get_loop() is not asyncio.get_running_loop():  # another app's
        read = asyncio.ensure_future(run_in_threadpool(live.job_version, settings, owner, job_id))
        _reads[key] = read
        read.add_done_callback(lambda done: _reads.pop(key) if _reads.get(key) is done else None)
    return await asyncio.shield(read)


async def _built(
    settings: Settings, builder: PageBuilder, owner: str, job_id: str, version: str
) -> None:
    """Have the page of ``version`` built before its viewers are told (their fetches then find
    it in memory): by this stream if no other is building it, else wait for that one without
    holding a thread."""
    while live.cached_page(owner, job_id, version) is None:
        if not live.is_building(owner, job_id):
            await run_in_threadpool(live.job_page_json, settings, builder, owner, job_id)
            return
        await asyncio.sleep(BUILD_CHECK_S)
