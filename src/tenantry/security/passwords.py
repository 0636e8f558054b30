"""argon2id password hashing."""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from tenantry.config import get_settings


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    s = get_settings()
    return PasswordHasher(time_cost=s.argon2_time_cost, memory_cost=s.argon2_memory_kib, parallelism=1)


def hash_password(password: str) -> str:
    return _hasher().hash(password)


@lru_cache(maxsize=1)
def dummy_hash() -> str:
    # Security: verified against when the account does not exist, so that an unknown email
    # costs the same time as a wrong password (no user enumeration by timing).
    return _hasher().hash("tenantry-dummy-password-for-timing")


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password; always spends one argon2 verification, even without a hash."""
    try:
        return _hasher().verify(password_hash or dummy_hash(), password) and bool(password_hash)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)
