"""Consecutive failed sign-ins per account key (hash of the normalised email).

Keyed by the email's hash, not the user id, so unknown addresses are throttled exactly like
known ones (no enumeration by behaviour). Row locks make the count race-free.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base


class LoginThrottle(Base):
    __tablename__ = "login_throttle"

    account_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failed_at: Mapped[datetime | None] = mapped_column(default=None)
    locked_at: Mapped[datetime | None] = mapped_column(default=None)
