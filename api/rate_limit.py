"""Each API key's request rate (OWASP API4: one client must not starve the others).

A moving window per key, from the ``limits`` library: counted in Redis when the broker is Redis
(every API process shares the counts), else in this process's memory (the embedded single-user
setup). Over the limit a request gets 429 ``rate_limited`` with ``Retry-After``. The open mode
has no keys and no limit.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from api.errors import RateLimitedError
from db.settings import Settings


def _storage(settings: Settings) -> Storage:
    broker = settings.resolved_broker_url()
    if broker.startswith(("redis://", "rediss://")):
        return RedisStorage(broker)
    return MemoryStorage()


class RateLimiter:
    """Counts each key's requests against its per-minute limit."""

    def __init__(self, settings: Settings) -> None:
        self.default_per_minute = settings.requests_per_minute
        self._limiter = MovingWindowRateLimiter(_storage(settings))

    def hit(self, key_id: str, per_minute: int | None) -> None:
        """Count one request of ``key_id``; ``RateLimitedError`` if it is over the limit
        (``per_minute``, the owner's own, else the service-wide one)."""
        limit = RateLimitItemPerMinute(per_minute or self.default_per_minute)
        if self._limiter.hit(limit, "api-key", key_id):
            return
        reset_at = self._limiter.get_window_stats(limit, "api-key", key_id).reset_time
        raise RateLimitedError(limit.amount, max(1, math.ceil(reset_at - time.time())))
