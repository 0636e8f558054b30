"""Effective-permission cache, invalidated by one version number.

Every role, grant, group or membership change bumps `authz_state.version` in its own
transaction. Each request compares the database's version with the cache's (one primary-key
read) and clears the cache when they differ, so every instance sees a change on its next
request. With Redis configured, a bump is also published so idle instances clear at once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import OrderedDict
from typing import Any

from sqlalchemy import ScalarSelect, event, select, update
from sqlalchemy.orm import Session, SessionTransaction

from tenantry.authz.catalog import register_resource_type
from tenantry.db import session as db_session
from tenantry.db.tables import AuthzState, ResourceType

log = logging.getLogger("tenantry.authz.cache")
CHANNEL = "tenantry:authz-version"
# The settings catalog's version (services/settings.py) travels the same way; its cache registers
# a hook here, since this layer may not import services.
SETTINGS_CHANNEL = "tenantry:settings-version"
_settings_hooks: list[Any] = []
_SYNCED = "authz_synced"
_PRIVATE = "authz_private_cache"


class PermissionCache:
    def __init__(self, maxsize: int = 200_000) -> None:
        self.maxsize = maxsize
        self.version = -1
        self.resource_types: tuple[str, ...] | None = None  # read with `version`
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        entry = self._data.get(key)
        # An entry computed under an older version (a transaction that raced a change) is void.
        return entry[1] if entry is not None and entry[0] == self.version else None

    def put(self, key: Any, value: Any, version: int | None = None) -> None:
        with self._lock:
            self._data[key] = (self.version if version is None else version, value)
            if len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self, version: int | None = None) -> None:
        with self._lock:
            self._data.clear()
            self.resource_types = None
            if version is not None:
                self.version = version

    def __len__(self) -> int:
        return len(self._data)


CACHE = PermissionCache()
_redis: Any = None
_listeners: list[Any] = []


def sync(session: Session) -> None:
    """Once per transaction: align the cache with the database's authorization version."""
    if session.info.get(_SYNCED) is not None:
        return
    _align(session, session.scalar(select(AuthzState.version).where(AuthzState.id == 1)) or 0)


def version_column() -> ScalarSelect[int]:
    """The version as a column of the transaction's first query: saves `sync` its own read.

    The caller passes what it read to `prime`; authentication uses this, so the check that
    makes a permission change act on the very next request costs no round trip of its own.
    """
    return select(AuthzState.version).where(AuthzState.id == 1).scalar_subquery()


def prime(session: Session, version: int | None) -> None:
    """`sync` with a version this transaction already read (see `version_column`)."""
    if session.info.get(_SYNCED) is None:
        _align(session, version or 0)


def _align(session: Session, version: int) -> None:
    if version != CACHE.version:
        CACHE.clear(version)
        # Resource types may have been added elsewhere: their permissions must exist here too.
        keys = tuple(key for (key,) in session.execute(select(ResourceType.key).order_by(ResourceType.key)))
        for key in keys:
            register_resource_type(key)
        CACHE.resource_types = keys
    session.info[_SYNCED] = version


def resource_type_keys(session: Session) -> tuple[str, ...]:
    """Every resource type's key as of this transaction's authorization version.

    Creating or deleting a type bumps the version, so the list read when the cache was aligned
    stays right until the next bump; a transaction that changed authorization data reads anew.
    """
    if session.info.get(_PRIVATE) is None:
        if session.info.get(_SYNCED) is None:
            sync(session)
        keys = CACHE.resource_types
        if keys is not None and CACHE.version == session.info.get(_SYNCED):
            return keys
    return tuple(key for (key,) in session.execute(select(ResourceType.key).order_by(ResourceType.key)))


def get(session: Session, key: Any) -> Any:
    """Look up under this transaction's view: the shared cache, or its private one (see `bump`)."""
    private = session.info.get(_PRIVATE)
    if private is not None:
        return private.get(key)
    if session.info.get(_SYNCED) is None:
        sync(session)
    return CACHE.get(key)


def put(session: Session, key: Any, value: Any) -> None:
    """Store a result, tagged with the version this transaction read.

    Security: facts read inside a transaction that changed authorization data never reach the
    shared cache; if that transaction rolled back they would grant what no longer exists.
    """
    private = session.info.get(_PRIVATE)
    if private is not None:
        private.put(key, value)
        return
    version = session.info.get(_SYNCED)
    if version is not None:
        CACHE.put(key, value, version)


def bump(session: Session) -> None:
    """Record an authorization change in the caller's transaction; clear caches after commit."""
    done = session.execute(
        update(AuthzState).where(AuthzState.id == 1).values(version=AuthzState.version + 1)
    ).rowcount  # type: ignore[attr-defined]
    if not done:
        session.add(AuthzState(id=1, version=1))
    session.info[_PRIVATE] = PermissionCache(maxsize=10_000)

    def _after() -> None:
        session.info.pop(_PRIVATE, None)
        CACHE.clear()
        CACHE.version = -1  # force a re-read of the version on the next request
        if _redis is not None:
            try:
                _redis.publish(CHANNEL, "bump")
            except Exception:  # Redis only speeds things up; the database stays authoritative
                log.warning("could not publish the authz version bump")

    db_session.after_commit(session, _after)


@event.listens_for(Session, "after_transaction_end")
def _forget_transaction_state(session: Session, transaction: SessionTransaction) -> None:
    """Per-transaction cache state ends with the transaction, committed or rolled back.

    Security: after a rollback the private cache holds facts of writes that no longer exist; a
    session that goes on (retry, CLI, job) must not serve them. Dropping the synced mark makes
    the next transaction read the version again, so a long-lived session sees other changes.
    """
    if transaction.nested or transaction.parent is not None:
        private = session.info.get(_PRIVATE)
        if private is not None:
            private.clear()  # a savepoint's facts may be undone; stay private, start afresh
        return
    session.info.pop(_PRIVATE, None)
    session.info.pop(_SYNCED, None)


def on_settings_bump(hook: Any) -> None:
    """Call `hook()` whenever another instance publishes a settings version bump."""
    _settings_hooks.append(hook)


def publish_settings_bump() -> None:
    """After a settings change committed: let idle instances clear their settings cache at once
    (the database version stays authoritative; Redis only speeds things up)."""
    if _redis is not None:
        try:
            _redis.publish(SETTINGS_CHANNEL, "bump")
        except Exception:
            log.warning("could not publish the settings version bump")


def listen(redis_url: str) -> threading.Thread:
    """Clear this instance's cache whenever another instance publishes a bump.

    When Redis is reachable the subscription is confirmed before this returns, so no bump
    published afterwards is missed. When it is not (or goes away later) the thread keeps trying
    to subscribe again; meanwhile the per-request version check keeps every answer correct, and
    the cache is cleared on each re-subscription since bumps may have been missed.
    """
    global _redis
    import redis

    _redis = redis.Redis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=1)
    stopping = threading.Event()
    _listeners.append(stopping)

    def subscribe() -> Any:
        pubsub = _redis_subscriber(redis_url)
        pubsub.subscribe(CHANNEL, SETTINGS_CHANNEL)
        deadline, confirmed = time.monotonic() + 5, 0
        while time.monotonic() < deadline and confirmed < 2:
            message = pubsub.get_message(timeout=0.5)
            if message is not None and message["type"] == "subscribe":
                confirmed += 1
        return pubsub

    first: list[Any] = []
    with contextlib.suppress(redis.RedisError, OSError):
        first.append(subscribe())

    def run() -> None:
        pubsub = first.pop() if first else None
        while not stopping.is_set():
            if pubsub is None:
                try:
                    pubsub = subscribe()
                except (redis.RedisError, OSError):
                    stopping.wait(1.0)
                    continue
                CACHE.clear()
                CACHE.version = -1  # bumps may have been missed while Redis was away
                for hook in _settings_hooks:
                    hook()
            try:
                message = pubsub.get_message(timeout=1.0)
                if message is None or message["type"] != "message":
                    continue
                if message["channel"] in (SETTINGS_CHANNEL, SETTINGS_CHANNEL.encode()):
                    for hook in _settings_hooks:
                        hook()
                else:
                    CACHE.clear()
                    CACHE.version = -1
            except Exception:  # Redis went away (or was closed): subscribe again
                with contextlib.suppress(Exception):
                    pubsub.close()
                pubsub = None
        if pubsub is not None:
            with contextlib.suppress(Exception):
                pubsub.close()

    thread = threading.Thread(target=run, name="tenantry-authz-listener", daemon=True)
    thread.start()
    return thread


def _redis_subscriber(redis_url: str) -> Any:
    import redis

    # No read timeout on the subscription itself: get_message polls with its own timeout.
    client = redis.Redis.from_url(redis_url, socket_connect_timeout=1, health_check_interval=10)
    return client.pubsub()  # type: ignore[no-untyped-call]


def stop_listening() -> None:
    """Stop publishing and listening (app shutdown, tests)."""
    global _redis
    while _listeners:
        _listeners.pop().set()
    _redis = None
