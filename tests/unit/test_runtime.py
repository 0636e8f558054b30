"""Worker start-up: the garbage collector is tuned once the app is built (issue 9)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn

from tenantry import runtime
from tenantry.cli import server as server_module
from tenantry.cli.server import ServeOptions, run_worker
from tests.backends import Backend


@pytest.fixture
def restore_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_tune_gc_freezes_what_exists_and_raises_the_thresholds(restore_gc: None) -> None:
    gc.unfreeze()
    runtime.tune_gc()
    assert gc.get_freeze_count() > 1000  # the modules, classes and functions imported so far
    assert gc.get_threshold() == runtime.GC_THRESHOLDS
    young, _, full = runtime.GC_THRESHOLDS
    assert young >= 10_000 and full > 10


def test_a_serve_worker_builds_the_app_then_tunes_gc_then_serves(
    monkeypatch: pytest.MonkeyPatch, backend: Backend, restore_gc: None
) -> None:
    monkeypatch.setenv("TENANTRY_DATABASE_URL", backend.app_url)
    events: list[str] = []
    loaded: list[Any] = []

    def tune() -> None:
        events.append("tune_gc")

    def fake_run(self: uvicorn.Server, sockets: Any = None) -> None:
        loaded.append(self.config.loaded_app)
        events.append("serve")
        self.started = True

    original_load = uvicorn.Config.load

    def load(self: uvicorn.Config) -> None:
        original_load(self)
        events.append("app built")

    monkeypatch.setattr(server_module, "tune_gc", tune)
    monkeypatch.setattr(uvicorn.Config, "load", load)
    monkeypatch.setattr(uvicorn.Server, "run", fake_run)
    run_worker(ServeOptions("127.0.0.1", 0, 2), None)
    assert events == ["app built", "tune_gc", "serve"]
    assert loaded and loaded[0] is not None


def test_serve_uses_the_tuning_of_tenantry_runtime() -> None:
    """One place: serve's worker calls the same function the runtime module defines."""
    assert server_module.tune_gc is runtime.tune_gc


def test_tune_malloc_fixes_glibcs_mmap_threshold_where_there_is_glibc() -> None:
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("mallopt is glibc's")
    assert runtime.tune_malloc() is True
