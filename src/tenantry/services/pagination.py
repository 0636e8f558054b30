"""Cursor pagination shared by every list service: opaque cursors over a stable keyset.

A cursor is base64url(JSON `[kind, value, ...]`): the list it belongs to and the keyset position
as strings. Anything else (not base64, not JSON, another list's cursor, wrong arity or types,
a value of the wrong form) is refused with one stable answer, 422 `invalid_cursor`, before it
reaches a query. A well-formed but edited cursor is only another position in the same list:
the list's own filters still decide what is visible, so cursors need no signature.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from tenantry.errors import Invalid

T = TypeVar("T")

MAX_CURSOR = 1024  # characters; our own cursors are far shorter


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def invalid_cursor() -> Invalid:
    return Invalid("cursor is not valid", code="invalid_cursor", field="cursor")


def encode_cursor(kind: str, *values: str) -> str:
    raw = json.dumps([kind, *values], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, arity: int = 1) -> list[str]:
    """The `arity` string values of a cursor issued for list `kind`; `invalid_cursor` otherwise."""
    if len(cursor) > MAX_CURSOR:
        raise invalid_cursor()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw.decode(), parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise invalid_cursor() from None
    if (
        not isinstance(data, list)
        or len(data) != arity + 1
        or data[0] != kind
        or not all(isinstance(v, str) and "\x00" not in v for v in data[1:])  # PostgreSQL refuses NUL
    ):
        raise invalid_cursor()
    return data[1:]


def decode_uuid_cursor(cursor: str, kind: str) -> uuid.UUID:
    return parse_uuid(decode_cursor(cursor, kind)[0])


def parse_uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise invalid_cursor() from None


def parse_datetime(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise invalid_cursor() from None
    if parsed.tzinfo is None:  # we only issue aware timestamps
        raise invalid_cursor()
    return parsed


def _no_constant(name: str) -> None:
    raise ValueError(name)
