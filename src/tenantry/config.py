"""Settings from the environment (TENANTRY_*) and an optional `.env` file (DESIGN §6)."""

from __future__ import annotations

import ipaddress
import re
import secrets
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class ConfigError(RuntimeError):
    """A TENANTRY_* value is unusable; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TENANTRY_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./var/tenantry.db"
    # Owner connection for migrations; on PostgreSQL the app itself should connect as a plain role
    # (not owner, not superuser) so that row-level security applies to it.
    migration_database_url: str | None = None
    redis_url: str | None = None
    smtp_url: str | None = None
    mail_from: str = "Tenantry <noreply@example.com>"
    outbox_dir: str = "./var/outbox"
    secret_key: str = Field(default_factory=lambda: secrets.token_urlsafe(32))
    public_url: str = "http://127.0.0.1:8000"
    admin_email: str = "admin@example.com"
    admin_password: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    session_idle_minutes: int = Field(default=12 * 60, ge=1)
    session_absolute_minutes: int = Field(default=7 * 24 * 60, ge=1)
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_memory_kib: int = Field(default=19_456, ge=8)
    run_jobs: bool = True
    # Identity (NIST SP 800-63B rev. 4 for passwords).
    password_min_length: int = Field(default=15, ge=8)
    password_min_length_with_2fa: int = Field(default=8, ge=8)
    api_key_default_days: int = Field(default=90, ge=1)
    api_key_max_days: int = Field(default=365, ge=1)
    invitation_days: int = Field(default=7, ge=1)
    password_reset_minutes: int = Field(default=60, ge=5)
    # Reset mails per address and hour; further requests get the same answer and no mail.
    password_reset_max_per_hour: int = Field(default=3, ge=1)
    # Brute force: free attempts per account before delays grow (1 s, 2 s, 4 s, … up to the cap),
    # the hard stop (NIST: at most 100 consecutive failures), and the per-address window.
    login_free_failures: int = Field(default=5, ge=1)
    login_max_delay_seconds: int = Field(default=900, ge=1)
    login_lock_after: int = Field(default=100, ge=2, le=100)
    login_ip_max_failures: int = Field(default=50, ge=1)
    login_ip_window_seconds: int = Field(default=900, ge=1)
    # Reverse proxies whose X-Forwarded-For is believed (addresses or CIDRs, comma-separated).
    trusted_proxies: Annotated[tuple[IPNetwork, ...], NoDecode] = ()
    smtp_timeout_seconds: float = Field(default=10.0, gt=0)
    mail_max_attempts: int = Field(default=8, ge=1)
    trash_retention_days: int = Field(default=30, ge=0)
    # Impersonation (assume a user's identity, DESIGN §1): off unless switched on, and how long
    # one may last at most.
    impersonation: bool = False
    impersonation_max_minutes: int = Field(default=60, ge=1, le=24 * 60)
    # Who may read /metrics: peers in these addresses/networks (comma-separated; empty = nobody
    # by address), or anyone sending `Authorization: Bearer <metrics_token>`.
    metrics_allow: Annotated[tuple[IPNetwork, ...], NoDecode] = (
        ipaddress.ip_network("127.0.0.1/32"),
        ipaddress.ip_network("::1/128"),
    )
    metrics_token: SecretStr | None = None

    @field_validator("database_url", "migration_database_url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        # `postgres://` is accepted too: db/engine.normalise_url maps it to psycopg.
        if value is not None and _scheme(value) not in ("sqlite", "postgresql", "postgres"):
            raise ValueError("must be a sqlite:// or postgresql:// URL")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("smtp://", "smtps://")):
            raise ValueError("must start with smtp:// or smtps://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("metrics_allow", "trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> tuple[IPNetwork, ...]:
        """`10.0.0.0/8, 192.0.2.7 ::1` → networks; a host address is its own /32 or /128."""
        items = value.replace(",", " ").split() if isinstance(value, str) else value
        try:
            return tuple(ipaddress.ip_network(str(item).strip()) for item in items)  # "10.0.0.1/8" is refused
        except ValueError as exc:
            raise ValueError(f"not an IP address or network: {exc}") from None

    @field_validator("metrics_token", mode="before")
    @classmethod
    def _metrics_token(cls, value: Any) -> Any:
        if value == "":
            return None  # unset, not "the empty token"
        if isinstance(value, str) and len(value) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @property
    def is_postgres(self) -> bool:
        return _scheme(self.database_url) in ("postgresql", "postgres")


def _scheme(url: str) -> str:
    """`postgresql+psycopg://…` → `postgresql`; no `://` → empty."""
    head, sep, _ = url.partition("://")
    return head.split("+", 1)[0].lower() if sep else ""


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning a validation error into one readable line per bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = "TENANTRY_" + str(err["loc"][0]).upper() if err["loc"] else "TENANTRY_?"
            lines.append(f"{name}: {err['msg']}")
        raise ConfigError("invalid configuration: " + "; ".join(lines)) from None
