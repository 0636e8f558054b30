"""Small helpers shared by the security tests (no fixtures here)."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy import select

from tenantry.db.session import Database
from tenantry.db.tables import OutboxMessage
from tests.personas import PASSWORD

NEW_PASSWORD = "a-different-passphrase-chosen-after-reset"
_TOKEN_RE = re.compile(r"token=([A-Za-z0-9_\-]+)")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(client: TestClient, email: str, password: str = PASSWORD, totp_code: str | None = None) -> Any:
    body: dict[str, str] = {"email": email, "password": password}
    if totp_code is not None:
        body["totp_code"] = totp_code
    return client.post("/api/v1/auth/login", json=body)


def code_of(response: Any) -> str:
    return str(response.json().get("code"))


def link_token(text: str) -> str:
    """The single-use token of the first link in a mail body."""
    m = _TOKEN_RE.search(text)
    assert m, f"no token= link in {text!r}"
    return m.group(1)


def outbox(db: Database, *, to: str | None = None, kind: str | None = None) -> list[OutboxMessage]:
    with db.unit_of_work() as session:
        stmt = select(OutboxMessage).order_by(OutboxMessage.created_at, OutboxMessage.id)
        if to is not None:
            stmt = stmt.where(OutboxMessage.to_addr == to)
        if kind is not None:
            stmt = stmt.where(OutboxMessage.kind == kind)
        return list(session.scalars(stmt))


def outbox_one(db: Database, id_: uuid.UUID) -> OutboxMessage:
    with db.unit_of_work() as session:
        msg = session.get(OutboxMessage, id_)
        assert msg is not None
        return msg


def counting(monkeypatch: Any, target: str) -> list[tuple[Any, ...]]:
    """Replace the function at dotted `target` by a wrapper that records every call."""
    module_name, _, attr = target.rpartition(".")
    module = __import__(module_name, fromlist=[attr])
    original: Callable[..., Any] = getattr(module, attr)
    calls: list[tuple[Any, ...]] = []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, attr, wrapper)
    return calls


# --- TOTP --------------------------------------------------------------------------------------


def totp_code(secret: str, steps: int = 0) -> str:
    """The code for the current 30 s step plus `steps` (the service accepts ±1 step)."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps)


def wrong_totp_code(secret: str) -> str:
    valid = {totp_code(secret, k) for k in range(-3, 4)}
    return next(c for c in ("000000", "111111", "123456", "987654", "555555") if c not in valid)


def in_parallel(n: int, fn: Callable[[], Any], timeout: float = 120) -> list[Any]:
    """Run `fn` in `n` threads released at the same moment; return their results (errors re-raised)."""
    barrier = threading.Barrier(n)
    results: list[Any] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run() -> None:
        try:
            barrier.wait(timeout=30)
            out = fn()
            with lock:
                results.append(out)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    if errors:
        raise errors[0]
    assert len(results) == n, "a thread did not finish"
    return results
