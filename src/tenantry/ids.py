"""Identifiers: time-ordered UUIDv7 for rows and prefixed opaque tokens."""

from __future__ import annotations

import os
import threading
import time
import uuid

TOKEN_PREFIX_SESSION = "tnt_ses_"
TOKEN_PREFIX_API_KEY = "tnt_pat_"
TOKEN_PREFIX_IMPERSONATION = "tnt_imp_"

_lock = threading.Lock()
_last = 0


def uuid7() -> uuid.UUID:
    """RFC 9562 UUIDv7: a 48-bit ms timestamp, then randomness; monotonic within a process.

    Monotonic ordering matters because ids double as the keyset for cursor pagination.
    """
    global _last
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62 | (rand & ((1 << 62) - 1))
    with _lock:
        if value <= _last:
            value = _last + 1
        _last = value
    return uuid.UUID(int=value)
