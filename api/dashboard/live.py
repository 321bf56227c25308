"""The job page's live data, cheap enough for many viewers polling every second: a job's version
is read at most every ``VERSION_TTL_S`` per API process (every viewer of that job shares it), and
its page data is built and encoded to JSON once per version, then sent as bytes to each viewer.

Both caches are keyed by owner and job: a hit is only ever served to the owner whose read put it
there (the first read of each checked the owner)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from api.dashboard import views
from api.dashboard.page_builder import PageBuilder
from api.errors import NotFoundError, quoted_id
from api.services import transaction
from api.services.jobs import job_or_404
from db.repositories import dashboard
from db.settings import Settings

#: how stale a job's version may be (a trial's end shows within this + the page's 1 s poll).
VERSION_TTL_S = 0.5
#: job pages kept built (by owner, job and version).
MAX_CACHED_PAGES = 32

Key = tuple[str, str]
_lock = threading.Lock()
_versions: OrderedDict[Key, tuple[float, str]] = OrderedDict()
_pages: OrderedDict[tuple[str, str, str], tuple[bytes, bytes]] = OrderedDict()
_building: dict[Key, threading.Lock] = {}
_curves: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    with _lock:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > MAX_CACHED_PAGES * 4:
            cache.popitem(last=False)
        if len(_building) > MAX_CACHED_PAGES * 4:
            _building.clear()  # a lock held now stays with its holder


def is_final(version: str) -> bool:
    """Whether ``version`` is an ended job's (its page changes no more)."""
    return dashboard.is_final_version(version)


def cached_version(owner: str, job_id: str) -> str | None:
    """The job's version if read less than ``VERSION_TTL_S`` ago (no database, no thread)."""
    with _lock:
        cached = _versions.get((owner, job_id))
    if cached is not None and time.monotonic() - cached[0] < VERSION_TTL_S:
        return cached[1]
    return None


def job_version(settings: Settings, owner: str, job_id: str) -> str:
    """The job's version token (it changes whenever its page would): at most
    ``VERSION_TTL_S`` old; 404 for an unknown job or another owner's."""
    cached = cached_version(owner, job_id)
    if cached is not None:
        return cached

    def read(session: Session) -> str:
        version = dashboard.job_version(session, job_id, owner)
        if version is None:
            raise NotFoundError(f"job {quoted_id(job_id)} not found")
        return version

    version = transaction(settings, "read a job's version", read)
    _remember(_versions, (owner, job_id), (time.monotonic(), version))
    return version


def cached_page(owner: str, job_id: str, version: str) -> tuple[bytes, bytes] | None:
    """The job page's JSON and gzipped JSON for ``version`` if already built (no database, no
    thread)."""
    with _lock:
        return _pages.get((owner, job_id, version))


def is_building(owner: str, job_id: str) -> bool:
    """Whether the job's page is being built now (by any thread of this process)."""
    with _lock:
        building = _building.get((owner, job_id))
    return building is not None and building.locked()


def current_page(owner: str, job_id: str) -> tuple[bytes, bytes] | None:
    """The job page's JSON and gzipped JSON for its current version if both are cached (no
    database, no thread): what most viewers' fetches find, the stream having built it."""
    version = cached_version(owner, job_id)
    return None if version is None else cached_page(owner, job_id, version)


def job_page_json(
    settings: Settings, builder: PageBuilder, owner: str, job_id: str
) -> tuple[bytes, bytes]:
    """The job page's data as JSON bytes, as is and gzipped (``page_builder.encode_job_page``),
    built by ``builder`` once per version of the job and shared by every viewer."""
    version = job_version(settings, owner, job_id)
    key = (owner, job_id, version)
    with _lock:
        building = _building.setdefault((owner, job_id), threading.Lock())
    # one build per version: the job's viewers that ask meanwhile wait for it
    with building:
        with _lock:
            cached = _pages.get(key)
        if cached is not None:
            return cached
        both = builder.job_page(settings, owner, job_id, version)
        _remember(_pages, key, both)
    return both


def job_curves(
    settings: Settings, owner: str, job_id: str, numbers: Sequence[int], metric: str | None
) -> dict[str, Any]:
    """``views.curves_payload``, kept while the job's version stands when every trial asked
    for has ended (a job's viewers ask for the same best trials' curves when its best trials
    change); a running trial's curves are read each time (its epochs move, its job's version
    does not)."""
    version = cached_version(owner, job_id)
    key = (owner, job_id, version, tuple(sorted(set(numbers))), metric)
    if version is not None:
        with _lock:
            found = _curves.get(key)
        if found is not None:
            return found
    found = views.curves_payload(settings, owner, job_id, numbers, metric)
    if version is not None and found["ended"]:
        _remember(_curves, key, found)
    return found


def trial_version(settings: Settings, owner: str, job_id: str, number: int) -> str:
    """A token that changes when the trial records an epoch or ends (its page polls it)."""

    def read(session: Session) -> str:
        job_or_404(session, job_id, owner)
        version = dashboard.trial_version(session, job_id, number)
        if version is None:
            raise NotFoundError(f"trial {number} of job {quoted_id(job_id)} not found")
        return version

    return transaction(settings, "read a trial's version", read)
