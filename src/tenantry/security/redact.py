"""The one list of secret field names, used for logs and audit diffs alike."""

from __future__ import annotations

import re
from typing import Any

REDACTED = "[redacted]"
SECRET_KEYS = frozenset(
    {
        "password",
        "new_password",
        "current_password",
        "password_hash",
        "token",
        "token_hash",
        "secret",
        "totp_secret",
        "recovery_codes",
        "recovery_code_hashes",
        "api_key",
        "authorization",
        "cookie",
        "smtp_password",
        "code",
        "totp_code",
    }
)


def _normalise(key: str) -> str:
    """`X-Api-Key`, `apiKey` and `api_key` are one name."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).replace("-", "_").lower()


def is_secret(key: str) -> bool:
    k = _normalise(key)
    return (
        k in SECRET_KEYS
        or k.endswith(("_password", "_secret", "_token", "_hash", "api_key", "_authorization"))
        or "cookie" in k
    )


def redact(value: Any) -> Any:
    """Return a copy with every secret-named field replaced, recursively."""
    if isinstance(value, dict):
        return {k: (REDACTED if is_secret(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value
