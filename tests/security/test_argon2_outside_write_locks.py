"""argon2 never runs while a transaction holds the database's write lock (issue 9).

A hash or verification costs tens of milliseconds by design. On SQLite a writing request takes
the database's only write lock at BEGIN, so an argon2 call inside its transaction queued every
sign-in of every worker behind it. Proved here without timing anything: every argon2 call is
intercepted, and at that moment a second connection tries to take the write lock (SQLite) or
looks for a transaction of the application that has written or locked rows (PostgreSQL).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from tenantry.db.engine import normalise_url
from tenantry.db.tables import User
from tenantry.security.passwords import dummy_hash, hash_password, needs_rehash
from tests.backends import Backend
from tests.personas import PASSWORD
from tests.security.helpers import NEW_PASSWORD, bearer, link_token, login, outbox, totp_code

MEMBER = "acme.member@example.com"
INVITEE = "invitee@example.com"


@dataclass
class Argon2Calls:
    """Every argon2 hash/verify made while installed, and those made under a write lock."""

    calls: list[str] = field(default_factory=list)
    under_lock: list[str] = field(default_factory=list)

    def reset(self) -> None:
        self.calls.clear()
        self.under_lock.clear()


def _write_lock_probe(backend: Backend) -> tuple[Callable[[], bool], Callable[[], None]]:
    """(is a write transaction open right now?, close) from a connection of its own."""
    if backend.name == "sqlite":
        path = make_url(backend.app_url).database
        assert path

        def sqlite_locked() -> bool:
            conn = sqlite3.connect(path, timeout=0, isolation_level=None)
            try:
                conn.execute("BEGIN IMMEDIATE")  # fails at once while another writer holds it
                conn.execute("ROLLBACK")
                return False
            except sqlite3.OperationalError as exc:
                assert "locked" in str(exc) or "busy" in str(exc), exc
                return True
            finally:
                conn.close()

        return sqlite_locked, lambda: None
    # PostgreSQL: a transaction gets an xid when it writes or locks a row; the probe runs as the
    # owner, who sees every session of the test database.
    engine = create_engine(normalise_url(backend.owner_url), isolation_level="AUTOCOMMIT")

    def pg_locked() -> bool:
        with engine.connect() as conn:
            n = conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
                )
            )
        return bool(n)

    return pg_locked, engine.dispose


@pytest.fixture
def argon2_calls(
    monkeypatch: pytest.MonkeyPatch, backend: Backend, personas: Any, app: Any
) -> Iterator[Argon2Calls]:
    """Installed after the personas are built (their set-up may hash inside its unit of work)."""
    dummy_hash(app.state.settings)  # made once per process, as the app does at start-up
    record = Argon2Calls()
    locked, close = _write_lock_probe(backend)

    def watch(name: str) -> None:
        original = getattr(PasswordHasher, name)

        def wrapper(self: PasswordHasher, *args: Any, **kwargs: Any) -> Any:
            record.calls.append(name)
            if locked():
                record.under_lock.append(name)
            return original(self, *args, **kwargs)

        monkeypatch.setattr(PasswordHasher, name, wrapper)

    watch("hash")
    watch("verify")
    yield record
    close()


def _only_outside_locks(record: Argon2Calls, *expected: str) -> None:
    assert sorted(record.calls) == sorted(expected), record.calls
    assert record.under_lock == []
    record.reset()


def test_login_right_wrong_unknown_and_inactive_verify_outside_write_locks(client, argon2_calls, clean_db):
    assert login(client, MEMBER).status_code == 200
    _only_outside_locks(argon2_calls, "verify")
    assert login(client, MEMBER, "not-the-password").status_code == 401
    _only_outside_locks(argon2_calls, "verify")
    assert login(client, "nobody@example.com").status_code == 401  # the dummy hash
    _only_outside_locks(argon2_calls, "verify")
    with clean_db.unit_of_work() as session:
        session.scalar(select(User).where(User.email == MEMBER)).active = False
    assert login(client, MEMBER).status_code == 401
    _only_outside_locks(argon2_calls, "verify")


def test_login_rehash_outside_write_locks(client, app, argon2_calls, clean_db):
    old = hash_password(PASSWORD, SimpleNamespace(argon2_time_cost=2, argon2_memory_kib=2048))
    with clean_db.unit_of_work() as session:
        session.scalar(select(User).where(User.email == MEMBER)).password_hash = old
    argon2_calls.reset()
    assert login(client, MEMBER).status_code == 200
    _only_outside_locks(argon2_calls, "verify", "hash")
    with clean_db.unit_of_work() as session:
        stored = session.scalar(select(User.password_hash).where(User.email == MEMBER))
    assert stored != old and not needs_rehash(stored, app.state.settings)


def test_create_user_with_password_hashes_outside_write_locks(client, personas, argon2_calls):
    r = client.post(
        "/api/v1/users",
        json={"email": "new.user@example.com", "password": NEW_PASSWORD},
        headers=bearer(personas.tokens["superadmin"]),
    )
    assert r.status_code == 201, r.text
    _only_outside_locks(argon2_calls, "hash")
    assert login(client, "new.user@example.com", NEW_PASSWORD).status_code == 200
    argon2_calls.reset()
    # Taken meanwhile is still refused with its own code, and nothing is written.
    again = client.post(
        "/api/v1/users",
        json={"email": "new.user@example.com", "password": NEW_PASSWORD},
        headers=bearer(personas.tokens["superadmin"]),
    )
    assert again.status_code == 409 and again.json()["code"] == "email_taken"


def test_password_change_forgot_reset_and_invitation_outside_write_locks(
    client, personas, argon2_calls, clean_db
):
    r = client.post(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(personas.tokens["acme_member"]),
    )
    assert r.status_code == 204, r.text
    _only_outside_locks(argon2_calls, "verify", "hash")

    assert client.post("/api/v1/auth/password/forgot", json={"email": MEMBER}).status_code == 202
    _only_outside_locks(argon2_calls, "verify")  # the constant-cost dummy verification
    token = link_token(outbox(clean_db, to=MEMBER, kind="password_reset")[-1].body_text)
    r = client.post("/api/v1/auth/password/reset", json={"token": token, "new_password": PASSWORD})
    assert r.status_code == 204, r.text
    _only_outside_locks(argon2_calls, "hash")

    r = client.post("/api/v1/users", json={"email": INVITEE}, headers=bearer(personas.tokens["superadmin"]))
    assert r.status_code == 201
    token = link_token(outbox(clean_db, to=INVITEE, kind="invitation")[-1].body_text)
    argon2_calls.reset()
    r = client.post("/api/v1/auth/invitations/accept", json={"token": token, "password": NEW_PASSWORD})
    assert r.status_code == 200, r.text
    _only_outside_locks(argon2_calls, "hash")


def test_2fa_disable_and_login_with_code_verify_outside_write_locks(client, personas, argon2_calls):
    token = personas.tokens["acme_member"]
    secret = client.post("/api/v1/me/2fa/setup", headers=bearer(token)).json()["secret"]
    r = client.post("/api/v1/me/2fa/enable", json={"code": totp_code(secret)}, headers=bearer(token))
    assert r.status_code == 200, r.text
    argon2_calls.reset()
    assert login(client, MEMBER, totp_code=totp_code(secret, 1)).status_code == 200
    _only_outside_locks(argon2_calls, "verify")
    r = client.request(
        "DELETE",
        "/api/v1/me/2fa",
        json={"password": PASSWORD, "code": r.json()["recovery_codes"][0]},
        headers=bearer(token),
    )
    assert r.status_code == 204, r.text
    _only_outside_locks(argon2_calls, "verify")


@pytest.mark.parametrize("second", [MEMBER, "acme.viewer@example.com"], ids=["same_user", "other_user"])
def test_two_logins_verify_at_the_same_time_and_both_succeed(app, personas, monkeypatch, second):
    """Both sign-ins must be inside argon2 together: with a write lock held across the check,
    the second would wait at BEGIN and the barrier would break (after 20 s, not a timing test)."""
    barrier = threading.Barrier(2, timeout=20)
    original = PasswordHasher.verify

    def verify(self: PasswordHasher, *args: Any, **kwargs: Any) -> Any:
        barrier.wait()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PasswordHasher, "verify", verify)
    results: list[int] = []
    errors: list[BaseException] = []

    def attempt(email: str) -> None:
        try:
            results.append(login(TestClient(app), email).status_code)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=attempt, args=(email,)) for email in (MEMBER, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert results == [200, 200]


# --- what the check relied on is read again before the session is written --------------------


def _during_first_verify(monkeypatch: pytest.MonkeyPatch, action: Callable[[], None]) -> list[int]:
    """Run `action` (its own transaction) while the first argon2 verification runs."""
    original = PasswordHasher.verify
    calls: list[int] = []

    def verify(self: PasswordHasher, *args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            action()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(PasswordHasher, "verify", verify)
    return calls


def _set_member(db: Any, **values: Any) -> Callable[[], None]:
    def action() -> None:
        with db.unit_of_work() as session:
            user = session.scalar(select(User).where(User.email == MEMBER))
            for name, value in values.items():
                setattr(user, name, value)

    return action


def test_login_password_changed_during_the_check_is_checked_again(
    client, app, personas, clean_db, monkeypatch
):
    other = hash_password(NEW_PASSWORD, app.state.settings)
    calls = _during_first_verify(monkeypatch, _set_member(clean_db, password_hash=other))
    r = login(client, MEMBER)
    assert r.status_code == 401 and r.json()["code"] == "invalid_credentials"
    assert len(calls) == 2  # the old hash, then the one stored now
    assert login(client, MEMBER, NEW_PASSWORD).status_code == 200


def test_login_same_password_rehashed_during_the_check_signs_in(client, app, personas, clean_db, monkeypatch):
    again = hash_password(PASSWORD, app.state.settings)  # a new salt: another hash string
    calls = _during_first_verify(monkeypatch, _set_member(clean_db, password_hash=again))
    assert login(client, MEMBER).status_code == 200
    assert len(calls) == 2


def test_login_deactivated_during_the_check_is_refused(client, personas, clean_db, monkeypatch):
    _during_first_verify(monkeypatch, _set_member(clean_db, active=False))
    r = login(client, MEMBER)
    assert r.status_code == 401 and r.json()["code"] == "invalid_credentials"


def test_login_locked_out_during_the_check_is_refused(client, personas, clean_db, monkeypatch):
    from tenantry.db.tables import LoginThrottle
    from tenantry.db.types import utcnow
    from tenantry.services import auth

    def lock() -> None:
        with clean_db.unit_of_work() as session:
            row = session.get(LoginThrottle, auth.account_key(MEMBER))
            assert row is not None  # this attempt's reservation
            row.locked_at = utcnow()

    _during_first_verify(monkeypatch, lock)
    r = login(client, MEMBER)
    assert r.status_code == 429 and r.json()["code"] == "account_locked"
    monkeypatch.undo()
    assert login(client, MEMBER).json()["code"] == "account_locked"  # still locked: no session


def test_password_change_checks_the_current_password_again_when_it_changed_meanwhile(
    client, app, personas, clean_db, monkeypatch
):
    again = hash_password(PASSWORD, app.state.settings)
    calls = _during_first_verify(monkeypatch, _set_member(clean_db, password_hash=again))
    r = client.post(
        "/api/v1/me/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=bearer(personas.tokens["acme_member"]),
    )
    assert r.status_code == 204, r.text
    assert len(calls) == 2
    other = hash_password("yet-another-passphrase-entirely", app.state.settings)
    calls = _during_first_verify(monkeypatch, _set_member(clean_db, password_hash=other))
    r = client.post(
        "/api/v1/me/password",
        json={"current_password": NEW_PASSWORD, "new_password": PASSWORD},
        headers=bearer(personas.tokens["acme_member"]),
    )
    assert r.status_code == 422 and r.json()["code"] == "invalid_password"
    assert len(calls) == 2
