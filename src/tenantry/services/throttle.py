"""Brute-force protection for every place a secret is checked.

Two counters, both *reserve-then-confirm*: an attempt is counted before the secret is checked
and handed back only when it was right, so a burst of parallel guesses can never race past a
limit.

- Per account (the `login_throttle` row, locked in the database): free failures, then growing
  delays, then a lock-out until a password reset. Sign-ins and secrets re-entered inside a
  signed-in session (current password, TOTP and recovery codes) share it.
- Per client address: a sliding window, in memory for one instance or in Redis across instances.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol, TypeVar

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from tenantry.db import session as db_session
from tenantry.db.tables import LoginThrottle, User
from tenantry.db.types import utcnow
from tenantry.errors import Invalid, RateLimited
from tenantry.mail import outbox
from tenantry.security import tokens
from tenantry.services import audit, settings
from tenantry.services.context import ServiceContext
from tenantry.services.settings_catalog import SecuritySettings

if TYPE_CHECKING:
    from tenantry.config import Settings

LOCKED_RETRY_AFTER = 3600
# How often a slow check is repeated when the password changed while it ran.
_RECHECKS = 3
T = TypeVar("T")


# --- per account -------------------------------------------------------------------------------


def account_key(email: str) -> str:
    return tokens.digest("login:" + email.strip().lower())


def _delay_seconds(s: SecuritySettings, failures: int) -> int:
    if failures < s.login_free_failures:
        return 0
    return min(s.login_max_delay_seconds, 1 << (failures - s.login_free_failures))


def reserve_account_attempt(ctx: ServiceContext, key: str) -> tuple[int, bool]:
    """Count this attempt as a failure *before* checking the secret, under a row lock.

    Parallel guesses therefore each consume an attempt: nobody races past the limit. Returns
    (failures so far including this one, newly locked). Raises RateLimited while waiting.
    Commits: the reservation must survive whatever happens next. The thresholds are the
    system values of the settings catalog (one for every account, see settings_catalog).
    """
    s = settings.effective(ctx.session, ctx.settings, None).security
    session = ctx.session
    ins = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    row = None
    for _ in range(3):
        # A successful sign-in in parallel may delete the row between the insert and the lock
        # (PostgreSQL then finds nothing): insert again rather than fail.
        session.execute(ins(LoginThrottle).values(account_key=key, failures=0).on_conflict_do_nothing())
        row = session.scalar(select(LoginThrottle).where(LoginThrottle.account_key == key).with_for_update())
        if row is not None:
            break
    assert row is not None
    now = utcnow()
    if row.locked_at is not None:
        ctx.commit()
        raise locked_out()
    wait = _delay_seconds(s, row.failures)
    if wait and row.last_failed_at and row.last_failed_at + timedelta(seconds=wait) > now:
        ctx.commit()
        remaining = int((row.last_failed_at + timedelta(seconds=wait) - now).total_seconds()) + 1
        raise RateLimited(retry_after=remaining)
    row.failures += 1
    row.last_failed_at = now
    newly_locked = row.failures >= s.login_lock_after
    if newly_locked:
        row.locked_at = now
    ctx.commit()
    return row.failures, newly_locked


def locked_out() -> RateLimited:
    return RateLimited(
        "too many failed sign-ins; reset your password to unlock",
        code="account_locked",
        retry_after=LOCKED_RETRY_AFTER,
    )


def is_locked(ctx: ServiceContext, key: str) -> bool:
    """Whether the account is locked out now (the row locked until the transaction ends)."""
    locked_at = ctx.session.scalar(
        select(LoginThrottle.locked_at).where(LoginThrottle.account_key == key).with_for_update()
    )
    return locked_at is not None


def clear_account(ctx: ServiceContext, email: str) -> None:
    """The right secret was given: the account starts from zero again."""
    ctx.session.execute(delete(LoginThrottle).where(LoginThrottle.account_key == account_key(email)))


def notify_locked(ctx: ServiceContext, user: User, failures: int) -> None:
    """Audit a lock-out and tell the owner how to lift it (a password reset)."""
    audit.record(ctx, "auth.account_locked", target_type="user", target_id=user.id, tenant_id=None)
    outbox.enqueue(
        ctx.session,
        kind="lockout",
        to=user.email,
        language=user.language,
        context={"failures": failures, "link": f"{ctx.settings.public_url}/forgot-password"},
    )


def guard_secret(
    ctx: ServiceContext,
    user: User,
    check: Callable[[], None] | None = None,
    *,
    slow_check: Callable[[str | None], T] | None = None,
) -> T | None:
    """Check a secret re-entered inside a signed-in session, on the user's account counter.

    For secrets re-entered inside a signed-in session: a stolen session must not become an
    unthrottled oracle for the password or the second factor. A wrong secret is counted (and
    audited, committed) exactly like a failed sign-in; a right one resets the counter.

    `slow_check(password_hash)` is the argon2 part (the current password; it may hash a new one
    and return it). It runs with no transaction open, against the hash read before: a hash
    inside a write transaction would hold SQLite's write lock for tens of milliseconds. The user
    is then read again, locked, and if the hash changed meanwhile the slow check is repeated
    against the new one. `check` (TOTP and recovery codes, which are consumed) runs on the
    locked row. Either raises Invalid for a wrong secret. Returns what `slow_check` returned.
    """
    failures, newly_locked = reserve_account_attempt(ctx, account_key(user.email))
    result: T | None = None
    seen = user.password_hash  # loaded before; the reservation's commit does not expire it
    try:
        for attempt in range(_RECHECKS):
            error: Invalid | None = None
            if slow_check is not None:
                if not db_session.release(ctx.session):
                    raise RuntimeError("a slow check inside a transaction that has written")
                try:
                    result = slow_check(seen)
                except Invalid as exc:
                    error = exc
            # Read the user again, locked, so parallel checks of one TOTP step or recovery code
            # are decided one after another.
            ctx.session.refresh(user, with_for_update=True)
            if slow_check is None or user.password_hash == seen:
                break
            if attempt == _RECHECKS - 1:
                raise Invalid("the password changed meanwhile; try again", code="password_changed")
            seen = user.password_hash
            ctx.session.rollback()  # nothing written yet: give the lock back, check again
        if error is not None:
            raise error
        if check is not None:
            check()
    except Invalid as exc:
        ctx.session.rollback()  # nothing the failed check may have changed is kept
        audit.record(
            ctx,
            "auth.reauth_failed",
            target_type="user",
            target_id=user.id,
            after={"reason": exc.code, "consecutive_failures": failures},
            tenant_id=None,
        )
        if newly_locked:
            notify_locked(ctx, user, failures)
        ctx.commit()
        raise
    clear_account(ctx, user.email)
    return result


# --- per client address ------------------------------------------------------------------------


class AddressLimiter(Protocol):
    def reserve(self, key: str) -> str:
        """Count one attempt now and return its ticket; RateLimited when the window is full."""
        ...

    def release(self, key: str, ticket: str) -> None:
        """The attempt was not a failure after all: it no longer counts."""
        ...

    def reset(self, key: str) -> None: ...


class MemoryLimiter:
    def __init__(self, max_failures: int, window: int) -> None:
        self.max, self.window = max_failures, window
        self._hits: dict[str, OrderedDict[str, float]] = {}
        self._lock = threading.Lock()

    def reserve(self, key: str) -> str:
        now = time.monotonic()
        with self._lock:  # check and count in one step
            hits = self._hits.setdefault(key, OrderedDict())
            while hits and next(iter(hits.values())) <= now - self.window:
                hits.popitem(last=False)
            if len(hits) >= self.max:
                first = next(iter(hits.values()))
                raise RateLimited(retry_after=max(1, int(first + self.window - now) + 1))
            ticket = uuid.uuid4().hex
            hits[ticket] = now
            return ticket

    def release(self, key: str, ticket: str) -> None:
        with self._lock:
            hits = self._hits.get(key)
            if hits is not None:
                hits.pop(ticket, None)
                if not hits:
                    del self._hits[key]

    def reset(self, key: str) -> None:
        with self._lock:
            self._hits.pop(key, None)


# Prune, count and add in one script: Redis runs it atomically, so parallel instances cannot
# each see "one below the limit" and all get through.
_RESERVE = """
local key, now, window, limit, ticket = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]),
    tonumber(ARGV[3]), ARGV[4]
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
if redis.call('ZCARD', key) >= limit then
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  return math.max(1, math.floor(tonumber(first[2]) + window - now) + 1)
end
redis.call('ZADD', key, now, ticket)
redis.call('EXPIRE', key, window)
return 0
"""


class RedisLimiter:
    """A sorted set per address (member: ticket, score: time), shared by every instance.

    Redis only spreads the count over instances. While it is unreachable each instance counts
    on its own (`MemoryLimiter`, same limits) instead of failing the sign-in; the per-account
    lock-out lives in the database and is unaffected. Every call tries Redis again (with short
    timeouts), so the shared count resumes as soon as Redis is back.
    """

    _MEMORY = "m:"  # tickets issued by the fallback

    def __init__(self, url: str, max_failures: int, window: int) -> None:
        import redis

        self.r = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self.max, self.window = max_failures, window
        self._reserve = self.r.register_script(_RESERVE)
        self.fallback = MemoryLimiter(max_failures, window)
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)

    def _key(self, key: str) -> str:
        return f"tenantry:login-fail:{key}"

    def reserve(self, key: str) -> str:
        ticket = uuid.uuid4().hex
        try:
            wait = int(
                self._reserve(keys=[self._key(key)], args=[time.time(), self.window, self.max, ticket])
            )
        except self._errors:
            return self._MEMORY + self.fallback.reserve(key)
        if wait:
            raise RateLimited(retry_after=wait)
        return ticket

    def release(self, key: str, ticket: str) -> None:
        if ticket.startswith(self._MEMORY):
            self.fallback.release(key, ticket[len(self._MEMORY) :])
            return
        with contextlib.suppress(*self._errors):  # expires with its window anyway
            self.r.zrem(self._key(key), ticket)

    def reset(self, key: str) -> None:
        self.fallback.reset(key)
        with contextlib.suppress(*self._errors):
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
