"""Password rules after NIST SP 800-63B rev. 4: length, no composition rules, no common passwords.

Checked with zxcvbn (a maintained strength estimator with built-in common-password and
dictionary lists), fed the email so that passwords built from it are refused.
"""

from __future__ import annotations

from typing import Protocol

from tenantry.errors import Invalid
from tenantry.security.passwords import normalise

MAX_LENGTH = 1024  # at least 64 must be accepted; never truncated when hashing
_SCORED_PREFIX = 64  # zxcvbn refuses inputs over 72 characters; a long prefix decides the score


class LengthPolicy(Protocol):
    """The minimum lengths that apply (the deployment's, or the settings catalog's for a user)."""

    @property
    def password_min_length(self) -> int: ...
    @property
    def password_min_length_with_2fa(self) -> int: ...


def check_password(password: str, *, email: str, has_2fa: bool, settings: LengthPolicy) -> None:
    s = settings
    password = normalise(password)
    minimum = s.password_min_length_with_2fa if has_2fa else s.password_min_length
    if len(password) < minimum:
        raise Invalid(
            f"use at least {minimum} characters",
            code="password_too_short",
            field="password",
            min_length=minimum,
        )
    if len(password) > MAX_LENGTH:
        raise Invalid(f"use at most {MAX_LENGTH} characters", code="password_too_long", field="password")
    local = email.split("@", 1)[0].lower()
    if len(local) >= 3 and local in password.lower():
        raise Invalid(
            "the password must not contain your email address",
            code="password_contains_email",
            field="password",
        )
    # Imported here: its dictionaries cost every worker 13 MB, and only password changes need them.
    from zxcvbn import zxcvbn

    result = zxcvbn(password[:_SCORED_PREFIX], user_inputs=[email, local, "tenantry"])
    if result["score"] < 3:
        hint = result["feedback"].get("warning") or "it is too easy to guess"
        raise Invalid(f"choose a harder password: {hint}", code="password_too_weak", field="password")
