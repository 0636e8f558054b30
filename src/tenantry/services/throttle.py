"""Per-address login throttling: in memory for one instance, in Redis across instances.

Per-account throttling lives on the user row (see services/auth.py), where the database makes
it race-free; this module only counts failures per client address in a sliding window.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict, deque
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tenantry.config import Settings


class AddressLimiter(Protocol):
    def blocked_for(self, key: str) -> int: ...
    def record_failure(self, key: str) -> None: ...
    def reset(self, key: str) -> None: ...


class MemoryLimiter:
    def __init__(self, max_failures: int, window: int) -> None:
        self.max, self.window = max_failures, window
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _prune(self, q: deque[float], now: float) -> None:
        while q and q[0] <= now - self.window:
            q.popleft()

    def blocked_for(self, key: str) -> int:
        now = time.monotonic()
        with self._lock:
            q = self._hits.get(key)
            if not q:
                return 0
            self._prune(q, now)
            if len(q) < self.max:
                return 0
            return max(1, int(q[0] + self.window - now) + 1)

    def record_failure(self, key: str) -> None:
        now = time.monotonic()
        with self._lock:
            q = self._hits[key]
            self._prune(q, now)
            q.append(now)

    def reset(self, key: str) -> None:
        with self._lock:
            self._hits.pop(key, None)


class RedisLimiter:
    """A sorted set per address; ZADD/ZREMRANGEBYSCORE in one pipeline keeps it atomic enough."""

    def __init__(self, url: str, max_failures: int, window: int) -> None:
        import redis

        self.r = redis.Redis.from_url(url)
        self.max, self.window = max_failures, window

    def _key(self, key: str) -> str:
        return f"tenantry:login-fail:{key}"

    def blocked_for(self, key: str) -> int:
        now = time.time()
        k = self._key(key)
        pipe = self.r.pipeline()
        pipe.zremrangebyscore(k, 0, now - self.window)
        pipe.zcard(k)
        pipe.zrange(k, 0, 0, withscores=True)
        _, count, first = pipe.execute()
        if count < self.max or not first:
            return 0
        return max(1, int(first[0][1] + self.window - now) + 1)

    def record_failure(self, key: str) -> None:
        now = time.time()
        k = self._key(key)
        pipe = self.r.pipeline()
        pipe.zadd(k, {f"{now}:{uuid.uuid4().hex}": now})  # unique across instances
        pipe.expire(k, self.window)
        pipe.execute()

    def reset(self, key: str) -> None:
        self.r.delete(self._key(key))


_limiter: AddressLimiter | None = None
_lock = threading.Lock()


def limiter(s: Settings) -> AddressLimiter:
    """The process's per-address limiter, built on first use from the caller's settings."""
    global _limiter
    with _lock:
        if _limiter is None:
            if s.redis_url:
                _limiter = RedisLimiter(s.redis_url, s.login_ip_max_failures, s.login_ip_window_seconds)
            else:
                _limiter = MemoryLimiter(s.login_ip_max_failures, s.login_ip_window_seconds)
        return _limiter


def set_limiter(value: AddressLimiter | None) -> None:
    """For tests and app start-up: choose the backend explicitly."""
    global _limiter
    with _lock:
        _limiter = value
