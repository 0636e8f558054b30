"""Run periodic jobs in a background thread (inside `serve`) or in the foreground (`worker`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from tenantry.config import Settings
from tenantry.db.session import Database
from tenantry.jobs import outbox_delivery, purge

log = logging.getLogger("tenantry.jobs")


def run_once(db: Database, settings: Settings) -> dict[str, int]:
    return {"mail_sent": outbox_delivery.deliver_due(db, settings), "batches_purged": purge.purge_expired(db)}


class JobRunner:
    def __init__(self, db: Database, settings: Settings, interval: float = 2.0) -> None:
        self.db, self.settings, self.interval = db, settings, interval
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        """Run soon (e.g. a mail was just queued)."""
        self._wake.set()

    def loop(self, should_stop: Callable[[], bool] | None = None) -> None:
        while not self._stop.is_set() and not (should_stop and should_stop()):
            try:
                run_once(self.db, self.settings)
            except Exception:  # a failing job must not kill the loop
                log.exception("job run failed")
            self._wake.wait(self.interval)
            self._wake.clear()

    def start(self) -> None:
        self._thread = threading.Thread(target=self.loop, name="tenantry-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=10)
