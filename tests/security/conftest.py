"""Fixtures for the security tests: settings overrides, a fresh address limiter, a fixed clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from tenantry.config import get_settings
from tenantry.services import throttle
from tests.smtp_sink import smtp_sink  # noqa: F401  (fixture)

SetEnv = Callable[..., None]


@pytest.fixture(autouse=True)
def _fresh_limiter() -> Iterator[None]:
    """The per-address limiter is a module global: never let failures bleed between tests."""
    throttle.set_limiter(None)
    yield
    throttle.set_limiter(None)


@pytest.fixture
def settings_env() -> Iterator[SetEnv]:
    """`settings_env(LOGIN_LOCK_AFTER=3, SMTP_URL=None)`: set/unset TENANTRY_* and reload settings.

    The limiter is rebuilt too (it reads its limits from the settings). Everything is undone,
    and the settings cache cleared again, after the test.
    """
    mp = pytest.MonkeyPatch()

    def apply(**values: object) -> None:
        for name, value in values.items():
            key = f"TENANTRY_{name.upper()}"
            if value is None:
                mp.delenv(key, raising=False)
            else:
                mp.setenv(key, str(value))
        get_settings.cache_clear()
        throttle.set_limiter(None)

    try:
        yield apply
    finally:
        mp.undo()
        get_settings.cache_clear()
        throttle.set_limiter(None)


@pytest.fixture
def frozen_auth_clock(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """Stop the sign-in service's clock, so growing delays (1 s, 2 s, …) never run out mid-test."""
    now = datetime.now(UTC).replace(microsecond=0)
    monkeypatch.setattr("tenantry.services.auth.utcnow", lambda: now)
    return now
