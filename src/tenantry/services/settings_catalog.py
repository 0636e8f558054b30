"""The settings catalog: one Pydantic model per category, its keys, types and system defaults.

A key's default is the deployment's value (TENANTRY_*, `ENV` below) or the field's default;
an administrator changes it at run time (system value), and a tenant may override the keys
marked `tenant` in the categories that are not system-only. Values are merged at read time
by services/settings.py; nothing here touches the database.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tenantry.config import Settings

LANGUAGES = ("en", "de")
_EMAIL_RE = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
HTTPS_URL_RE = re.compile(r"^https://[^\s/$.?#][^\s]*$")


def setting(default: Any = None, *, tenant: bool = False, **constraints: Any) -> Any:
    """A catalog field; `tenant=True`: a tenant may override it (categories not system-only)."""
    return Field(default, json_schema_extra={"tenant_overridable": tenant}, **constraints)


class Category(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
    system_only: ClassVar[bool] = False

    @classmethod
    def overridable(cls, key: str) -> bool:
        extra = cls.model_fields[key].json_schema_extra
        return not cls.system_only and isinstance(extra, dict) and extra.get("tenant_overridable") is True


class GeneralSettings(Category):
    display_name: str = setting("Tenantry", tenant=True, min_length=1, max_length=200)
    default_language: Literal["en", "de"] = setting("en", tenant=True)
    time_zone: str = setting("UTC", tenant=True, max_length=64)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        if value != "UTC" and value not in _zones():
            raise ValueError("not an IANA time zone name")
        return value


class SecuritySettings(Category):
    # Members without 2FA must set it up at their next sign-in.
    require_2fa: bool = setting(False, tenant=True)
    session_idle_minutes: int = setting(tenant=True, ge=1, le=10**8)
    session_absolute_minutes: int = setting(tenant=True, ge=1, le=10**8)
    password_min_length: int = setting(tenant=True, ge=8, le=1024)
    password_min_length_with_2fa: int = setting(tenant=True, ge=8, le=1024)
    # Security: the lock-out counts attempts per email before the account is known, so one
    # threshold for everyone; a per-tenant one would tell who belongs where.
    login_free_failures: int = setting(ge=1, le=10**6)
    login_max_delay_seconds: int = setting(ge=1, le=10**8)
    login_lock_after: int = setting(ge=2, le=100)
    # Whether this tenant's members may be impersonated, for how long, and whether they are told.
    # TENANTRY_IMPERSONATION=off switches impersonation off whatever these say (DESIGN §1).
    impersonation_allowed: bool = setting(tenant=True)
    impersonation_notice_mail: bool = setting(True, tenant=True)
    impersonation_max_minutes: int = setting(tenant=True, ge=1, le=24 * 60)


class NotificationSettings(Category):
    sender_name: str | None = setting(None, tenant=True, min_length=1, max_length=100)
    reply_to: str | None = setting(None, tenant=True, max_length=320)

    @field_validator("sender_name")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and any(c in value for c in '\r\n<>"'):
            raise ValueError("one line, without < > or quotes")
        return value

    @field_validator("reply_to")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and not _EMAIL_RE.match(value):
            raise ValueError("not an email address")
        return value


class BrandingSettings(Category):
    """A tenant's values are its `branding_color` / `branding_logo_url` columns (the tenant payload's
    `branding`): one source of truth, read with the tenant itself."""

    color: str | None = setting("#2f6fde", tenant=True, pattern=COLOR_RE.pattern)
    logo_url: str | None = setting(None, tenant=True, max_length=2048, pattern=HTTPS_URL_RE.pattern)

    @field_validator("color")
    @classmethod
    def _lower(cls, value: str | None) -> str | None:
        return value.lower() if value else value


class TrashSettings(Category):
    system_only: ClassVar[bool] = True
    retention_days: int = setting(ge=0, le=10**5)


class MailSettings(Category):
    system_only: ClassVar[bool] = True
    sender: str = setting(min_length=3, max_length=320)

    @field_validator("sender")
    @classmethod
    def _no_header_injection(cls, value: str) -> str:
        if any(c in value for c in "\r\n") or "@" not in value:
            raise ValueError("one line holding an email address")
        return value


class DefaultsSettings(Category):
    """What a new tenant starts with (written as its overrides when it is created)."""

    system_only: ClassVar[bool] = True
    require_2fa: bool = setting(False)
    default_language: Literal["en", "de"] | None = setting(None)


CATEGORIES: dict[str, type[Category]] = {
    "general": GeneralSettings,
    "security": SecuritySettings,
    "notifications": NotificationSettings,
    "branding": BrandingSettings,
    "trash": TrashSettings,
    "mail": MailSettings,
    "defaults": DefaultsSettings,
}
TENANT_CATEGORIES = tuple(name for name, cls in CATEGORIES.items() if not cls.system_only)

# Keys whose default is a deployment setting: (category, key) → Settings attribute.
ENV: dict[tuple[str, str], str] = {
    ("security", "session_idle_minutes"): "session_idle_minutes",
    ("security", "session_absolute_minutes"): "session_absolute_minutes",
    ("security", "password_min_length"): "password_min_length",
    ("security", "password_min_length_with_2fa"): "password_min_length_with_2fa",
    ("security", "login_free_failures"): "login_free_failures",
    ("security", "login_max_delay_seconds"): "login_max_delay_seconds",
    ("security", "login_lock_after"): "login_lock_after",
    ("security", "impersonation_allowed"): "impersonation",
    ("security", "impersonation_max_minutes"): "impersonation_max_minutes",
    ("trash", "retention_days"): "trash_retention_days",
    ("mail", "sender"): "mail_from",
}


def deployment_defaults(deployment: Settings) -> dict[str, dict[str, Any]]:
    """Per category, the values the deployment's environment sets (before any system value)."""
    out: dict[str, dict[str, Any]] = {name: {} for name in CATEGORIES}
    for (category, key), attr in ENV.items():
        out[category][key] = getattr(deployment, attr)
    return out


_ZONES: frozenset[str] | None = None


def _zones() -> frozenset[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = frozenset(available_timezones())
    return _ZONES
