"""Across instances: a version bump published on Redis clears every listener's permission cache."""

import os
import time

import pytest

from tenantry.authz import cache

REDIS = os.environ.get("TENANTRY_TEST_REDIS_URL")


@pytest.mark.skipif(not REDIS, reason="TENANTRY_TEST_REDIS_URL is not set")
def test_published_bump_clears_the_listening_cache():
    cache.listen(REDIS)
    try:
        _assert_bump_clears()
    finally:
        cache.stop_listening()


def _assert_bump_clears():
    cache.CACHE.clear(41)
    cache.CACHE.put("probe", frozenset({"tenant.read"}), 41)
    assert cache.CACHE.get("probe") == frozenset({"tenant.read"})
    cache._redis.publish(cache.CHANNEL, "bump")
    deadline = time.monotonic() + 5
    while cache.CACHE.get("probe") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert cache.CACHE.get("probe") is None
    assert cache.CACHE.version == -1  # the next request re-reads the version from the database


@pytest.mark.skipif(not REDIS, reason="TENANTRY_TEST_REDIS_URL is not set")
def test_published_settings_bump_clears_the_settings_cache_but_not_permissions():
    from tenantry.config import load_settings
    from tenantry.services import settings

    cache.listen(REDIS)
    try:
        deployment = load_settings()
        settings.CACHE.put(("system",), deployment, (1, 1), "probe")
        cache.CACHE.clear(41)
        cache.CACHE.put("perm", frozenset({"tenant.read"}), 41)
        cache.publish_settings_bump()
        deadline = time.monotonic() + 5
        while settings.CACHE.get(("system",), deployment, (1, 1)) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert settings.CACHE.get(("system",), deployment, (1, 1)) is None
        assert cache.CACHE.get("perm") == frozenset({"tenant.read"})
    finally:
        cache.stop_listening()
