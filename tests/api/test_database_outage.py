"""A database outage answers 503 problem+json, never a 500 page (issue 13).

The failures are injected at the cursor (the driver's error, wrapped like SQLAlchemy wraps it):
a broken connection, a read-only database, an ordinary bug. The real thing — a PostgreSQL
restarted under load, a read-only cluster — is in tests/cluster/test_faults.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, OperationalError

from tenantry.db import availability
from tenantry.db.session import Database
from tests.asserts import assert_problem


class Broken(Exception):
    """Stands for the driver's exception."""

    def __init__(self, message: str, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


def lost() -> OperationalError:
    return OperationalError("SELECT 1", {}, Broken("server closed the connection unexpectedly"), True)


def read_only() -> OperationalError:
    return OperationalError(
        "UPDATE users", {}, Broken("cannot execute UPDATE in a read-only transaction", "25006")
    )


@pytest.fixture
def inject(clean_db: Database) -> Iterator[Callable[..., list[str]]]:
    """`inject(make_error, times=1, when=...)`: the next matching statements fail with it."""
    installed: list[Any] = []

    def arm(make: Callable[[], Exception], times: int = 1, when: str = "") -> list[str]:
        failed: list[str] = []

        def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if len(failed) < times and when.lower() in statement.lower():
                failed.append(statement)
                raise make()

        event.listen(clean_db.engine, "before_cursor_execute", before)
        installed.append(before)
        return failed

    yield arm
    for before in installed:
        event.remove(clean_db.engine, "before_cursor_execute", before)


def test_a_read_whose_connection_broke_is_retried_once_and_answers(
    api: Callable[[str | None], TestClient], inject: Callable[..., list[str]]
) -> None:
    client = api("acme_admin")
    failed = inject(lost, times=1)
    r = client.get("/api/v1/me")
    assert r.status_code == 200, r.text
    assert len(failed) == 1


def test_a_read_failing_twice_answers_503_database_unavailable(
    api: Callable[[str | None], TestClient], inject: Callable[..., list[str]]
) -> None:
    client = api("acme_admin")
    failed = inject(lost, times=2)
    r = client.get("/api/v1/me")
    assert_problem(r, 503, "database_unavailable")
    assert r.headers["Retry-After"]
    assert len(failed) == 2


def test_a_write_is_not_repeated_and_answers_503(
    api: Callable[[str | None], TestClient], inject: Callable[..., list[str]]
) -> None:
    client = api("acme_admin")
    failed = inject(lost, times=5, when="UPDATE users")
    r = client.patch("/api/v1/me", json={"first_name": "Changed"})
    assert_problem(r, 503, "database_unavailable")
    assert len(failed) == 1  # not retried
    assert client.get("/api/v1/me").json()["first_name"] != "Changed"


def test_a_read_only_database_answers_503_to_writes_and_serves_reads(
    api: Callable[[str | None], TestClient], inject: Callable[..., list[str]]
) -> None:
    client = api("acme_admin")
    inject(read_only, times=5, when="UPDATE users")
    assert_problem(client.patch("/api/v1/me", json={"first_name": "Changed"}), 503, "database_read_only")
    assert client.get("/api/v1/me").status_code == 200


def test_an_ordinary_database_error_is_still_a_bug_not_an_outage() -> None:
    assert availability.classify(IntegrityError("INSERT", {}, Broken("duplicate key", "23505"))) is None
    assert availability.classify(lost()) == "database_unavailable"
    assert availability.classify(read_only()) == "database_read_only"
    full = OperationalError("INSERT", {}, Broken("could not extend file: No space left on device", "53100"))
    assert availability.classify(full) == "database_read_only"
    sqlite_ro = OperationalError("INSERT", {}, Broken("attempt to write a readonly database"))
    assert availability.classify(sqlite_ro) == "database_read_only"
