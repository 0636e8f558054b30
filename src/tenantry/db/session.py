"""Engine + session factory per process, and the unit of work that commits explicitly."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import tenantry.db.scoping  # noqa: F401  (registers the scoping listeners)
from tenantry.db.engine import make_engine

if TYPE_CHECKING:
    from tenantry.config import Settings

AFTER_COMMIT = "after_commit"


SETTINGS = "settings"


@dataclass
class Database:
    """One engine and its sessions; each session carries the settings it was opened with.

    Services read settings from their context (`ctx.settings`), which takes them from the
    session: the process that opened the database decides them, never a module-level global.
    """

    url: str
    settings: Settings | None = None
    engine: Engine = field(init=False)
    sessions: sessionmaker[Session] = field(init=False)

    def __post_init__(self) -> None:
        if self.settings is None:
            from tenantry.config import load_settings

            self.settings = load_settings(database_url=self.url)
        self.engine = make_engine(self.url)
        self.sessions = sessionmaker(
            self.engine, expire_on_commit=False, autoflush=True, info={SETTINGS: self.settings}
        )

    def with_settings(self, settings: Settings) -> Database:
        """The same engine (and pool) whose sessions carry other settings: an app given its own."""
        clone = copy.copy(self)
        clone.settings = settings
        clone.sessions = sessionmaker(
            self.engine, expire_on_commit=False, autoflush=True, info={SETTINGS: settings}
        )
        return clone

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One transaction: commit on success, roll back on error, then run after-commit hooks."""
        session = self.sessions()
        try:
            yield session
            commit(session)
        except BaseException:
            session.rollback()
            session.info.pop(AFTER_COMMIT, None)  # side effects of work that never happened
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


def after_commit(session: Session, hook: Callable[[], None]) -> None:
    """Queue a side effect (cache bump, wake the mailer) for after the transaction commits."""
    session.info.setdefault(AFTER_COMMIT, []).append(hook)


def commit(session: Session) -> None:
    session.commit()
    hooks = session.info.pop(AFTER_COMMIT, [])
    for hook in hooks:
        hook()
