"""Engine + session factory per process, and the unit of work that commits explicitly."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

import tenantry.db.scoping  # noqa: F401  (registers the scoping listeners)
from tenantry.db.engine import make_engine

AFTER_COMMIT = "after_commit"


@dataclass
class Database:
    url: str
    engine: Engine = field(init=False)
    sessions: sessionmaker[Session] = field(init=False)

    def __post_init__(self) -> None:
        self.engine = make_engine(self.url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False, autoflush=True)

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
