"""Domain errors with stable codes. No HTTP here: `api/problems.py` maps kinds to statuses."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error a service raises for a client to react to."""

    code = "error"
    title = "Error"

    def __init__(self, detail: str = "", *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        if code:
            self.code = code
        self.extra = extra


class NotFound(DomainError):
    code = "not_found"
    title = "Not found"

    def __init__(self, what: str = "object", **extra: Any) -> None:
        super().__init__(f"{what} not found", **extra)


class Unauthenticated(DomainError):
    code = "unauthenticated"
    title = "Authentication required"


class PermissionDenied(DomainError):
    code = "permission_denied"
    title = "Permission denied"


class Conflict(DomainError):
    code = "conflict"
    title = "Conflict"


class Invalid(DomainError):
    code = "invalid"
    title = "Invalid input"


class PreconditionFailed(DomainError):
    code = "etag_mismatch"
    title = "Precondition failed"


class PreconditionRequired(DomainError):
    code = "precondition_required"
    title = "Precondition required"


class RateLimited(DomainError):
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str = "", *, retry_after: int, **extra: Any) -> None:
        super().__init__(detail or "too many attempts, try again later", **extra)
        self.retry_after = retry_after


class RiskNotAcknowledged(DomainError):
    code = "risk_not_acknowledged"
    title = "Dangerous permissions need acknowledgement"
