"""Keeps traces of refusals (audit events, warnings) from flooding: a budget per key and overall.

A scanner can provoke thousands of refusals a minute. Each key (e.g. actor + permission +
tenant) may leave `per_key` traces a minute and everything together `overall` a minute; what
is held back is counted, and the next trace admitted for that key says how many it stands for.
In process the budgets are token buckets; with Redis they are per-minute counters shared by
every instance, and an unreachable Redis falls back to the in-process buckets for a while.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger("tenantry.security")

Clock = Callable[[], float]
_MAX_KEYS = 10_000  # in-process state per sampler; idle keys are dropped beyond this
_REDIS_RETRY_AFTER = 30.0  # seconds on the in-process buckets after a Redis error


class Sampler(Protocol):
    def admit(self, key: str) -> int | None:
        """None: hold this trace back (it is counted). Otherwise: how many were held back before it."""
        ...


class MemorySampler:
    """Token buckets: `per_key` (and `overall`) tokens, refilled evenly over a minute."""

    def __init__(self, per_key: int, overall: int, clock: Clock = time.monotonic) -> None:
        self.per_key, self.overall, self.clock = per_key, overall, clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, updated)
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def _take(self, key: str, capacity: int, now: float) -> bool:
        tokens, updated = self._buckets.get(key, (float(capacity), now))
        tokens = min(float(capacity), tokens + (now - updated) * capacity / 60.0)
        ok = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if ok else tokens, now)
        return ok

    def _prune(self, now: float) -> None:
        """Forget keys whose bucket has refilled (idle a minute) and that hold nothing back."""
        if len(self._buckets) <= _MAX_KEYS:
            return
        for key, (_tokens, updated) in list(self._buckets.items()):
            if now - updated >= 60.0 and not self._held.get(key):
                del self._buckets[key]

    def admit(self, key: str) -> int | None:
        with self._lock:
            now = self.clock()
            self._prune(now)
            if self._take(key, self.per_key, now) and self._take("\0overall", self.overall, now):
                return self._held.pop(key, 0)
            self._held[key] = self._held.get(key, 0) + 1
            return None


class RedisSampler:
    """Per-minute counters in Redis (INCR + EXPIRE in one transaction), shared by every instance."""

    def __init__(
        self,
        url: str,
        per_key: int,
        overall: int,
        *,
        prefix: str = "tenantry:trace",
        clock: Clock = time.time,
        fallback: MemorySampler | None = None,
    ) -> None:
        import redis

        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        self.r: Any = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
        self.per_key, self.overall, self.prefix, self.clock = per_key, overall, prefix, clock
        self.fallback = fallback or MemorySampler(per_key, overall)
        self._down_until = 0.0

    def _k(self, kind: str, key: str) -> str:
        return f"{self.prefix}:{kind}:{hashlib.sha256(key.encode()).hexdigest()[:32]}"

    def _count(self, name: str, window: int) -> int:
        pipe = self.r.pipeline()
        pipe.incr(f"{name}:{window}")
        pipe.expire(f"{name}:{window}", 120)
        return int(pipe.execute()[0])

    def admit(self, key: str) -> int | None:
        now = self.clock()
        if now < self._down_until:
            return self.fallback.admit(key)
        window = int(now // 60)
        held = self._k("held", key)
        try:
            ok = (
                self._count(self._k("n", key), window) <= self.per_key
                and self._count(f"{self.prefix}:overall", window) <= self.overall
            )
            pipe = self.r.pipeline()  # MULTI/EXEC: no other instance slips in between
            if not ok:
                pipe.incr(held)
                pipe.expire(held, 86400)
                pipe.execute()
                return None
            pipe.get(held)
            pipe.delete(held)
            return int(pipe.execute()[0] or 0)
        except self._errors as exc:
            self._down_until = now + _REDIS_RETRY_AFTER
            log.warning("trace limits fall back to this process: redis unavailable", exc_info=exc)
            return self.fallback.admit(key)


def build(redis_url: str | None, per_key: int, overall: int, prefix: str) -> Sampler:
    if redis_url:
        return RedisSampler(redis_url, per_key, overall, prefix=prefix)
    return MemorySampler(per_key, overall)
