"""argon2id password hashing; the parameters come from the caller's settings, never a global."""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class HashParams(Protocol):
    argon2_time_cost: int
    argon2_memory_kib: int


@lru_cache(maxsize=8)
def _hasher(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)


def hasher(params: HashParams) -> PasswordHasher:
    return _hasher(params.argon2_time_cost, params.argon2_memory_kib)


def normalise(password: str) -> str:
    """NFKC (NIST SP 800-63B 3.1.1.2), never trimmed: one password typed on two keyboards is one."""
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str, params: HashParams) -> str:
    return hasher(params).hash(normalise(password))


@lru_cache(maxsize=8)
def _dummy_hash(time_cost: int, memory_kib: int) -> str:
    # Security: verified against when the account does not exist, so that an unknown email
    # costs the same time as a wrong password (no user enumeration by timing).
    return _hasher(time_cost, memory_kib).hash("tenantry-dummy-password-for-timing")


def dummy_hash(params: HashParams) -> str:
    return _dummy_hash(params.argon2_time_cost, params.argon2_memory_kib)


def verify_password(password_hash: str | None, password: str, params: HashParams) -> bool:
    """Check a password; always spends one argon2 verification, even without a hash."""
    try:
        return hasher(params).verify(password_hash or dummy_hash(params), normalise(password)) and bool(
            password_hash
        )
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str, params: HashParams) -> bool:
    """True when the stored hash was made with other parameters than the configured ones."""
    try:
        return hasher(params).check_needs_rehash(password_hash)
    except InvalidHashError:
        return True
