"""Cursor pagination shared by every list service: opaque cursors over a stable keyset."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from typing import Generic, TypeVar

from tenantry.errors import Invalid

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        raise Invalid("cursor is not valid", code="invalid_cursor") from None


def decode_uuid_cursor(cursor: str) -> uuid.UUID:
    try:
        return uuid.UUID(decode_cursor(cursor))
    except ValueError:
        raise Invalid("cursor is not valid", code="invalid_cursor") from None
