"""Assertions the API tests share."""

from __future__ import annotations

from typing import Any


def assert_problem(r: Any, status: int, code: str) -> dict[str, Any]:
    """A problem+json answer with this status and stable `code`; returns its body."""
    assert r.status_code == status, f"{r.status_code} {r.text[:300]}"
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["code"] == code, body
    assert body["status"] == status
    return body
