"""Engine + session factory per process, and the unit of work that commits explicitly."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Engine, event
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, sessionmaker

import tenantry.db.scoping  # noqa: F401  (registers the scoping listeners)
from tenantry.db.engine import make_engine

if TYPE_CHECKING:
    from tenantry.config import Settings

AFTER_COMMIT = "after_commit"
_WROTE = "tenantry.wrote"


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


# --- slow work outside the write lock ------------------------------------------------------------
#
# SQLite has one writer at a time, and a writing request takes the lock at BEGIN (see
# `db.engine.sqlite_write_intent`); PostgreSQL keeps the row locks of a transaction until it ends.
# CPU-heavy steps (argon2: tens of milliseconds) must therefore not run inside a transaction that
# has written or locked anything. `release` ends a transaction that has only read so far, so the
# slow step can run between two transactions; what the step relied on is re-read afterwards.


@event.listens_for(Session, "do_orm_execute")
def _note_write(state: ORMExecuteState) -> None:
    # Anything but a plain SELECT (DML, text(), SELECT … FOR UPDATE) counts as a write: when in
    # doubt the transaction is kept, never committed half-way.
    stmt = state.statement
    if not state.is_select or getattr(stmt, "_for_update_arg", None) is not None:
        state.session.info[_WROTE] = True


@event.listens_for(Session, "after_flush")
def _note_flush(session: Session, _flush_context: object) -> None:
    session.info[_WROTE] = True


@event.listens_for(Session, "after_transaction_end")
def _forget_writes(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_WROTE, None)


def wrote(session: Session) -> bool:
    """Whether the session's current transaction has written or locked anything (conservative)."""
    return bool(session.info.get(_WROTE))


def release(session: Session) -> bool:
    """End the transaction if it has only read so far; True when no transaction is open afterwards.

    For the part of a unit of work before its first write: committing a read changes nothing,
    and loaded objects stay usable (`expire_on_commit=False`). A transaction that has written
    is kept (False): the unit of work must stay all-or-nothing.
    """
    if not session.in_transaction():
        return True
    if wrote(session) or session.new or session.dirty or session.deleted:
        return False
    commit(session)
    return True
