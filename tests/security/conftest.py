"""Fixtures for the security tests: settings overrides, a fresh address limiter, a fixed clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi import FastAPI

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
def settings_env(app: FastAPI) -> Iterator[SetEnv]:
    """`settings_env(LOGIN_LOCK_AFTER=3, SMTP_URL=None)`: change the app's own settings for this test.

    Services read the settings they are given (the app's), so the test changes that object; the
    limiter is rebuilt too (it reads its limits from the settings).
    """
    settings = app.state.settings

    def apply(**values: object) -> None:
        for name, value in values.items():
            setattr(settings, name.lower(), str(value) if isinstance(value, Path) else value)
        throttle.set_limiter(None)

    yield apply
    throttle.set_limiter(None)


@pytest.fixture
def frozen_auth_clock(monkeypatch: pytest.MonkeyPatch) -> datetime:
    """Stop the sign-in clocks (auth, throttle): growing delays (1 s, 2 s, …) never run out mid-test."""
    now = datetime.now(UTC).replace(microsecond=0)
    monkeypatch.setattr("tenantry.services.auth.utcnow", lambda: now)
    monkeypatch.setattr("tenantry.services.throttle.utcnow", lambda: now)
    return now
