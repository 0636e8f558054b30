"""Settings from the environment (TENANTRY_*) and an optional `.env` file (DESIGN §6)."""

from __future__ import annotations

import secrets
from functools import lru_cache
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    impersonation: Literal["on", "off"] = "off"
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

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("must be a sqlite:// or postgresql:// URL")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_scheme(cls, value: str | None) -> str | None:
        if value and not value.startswith(("smtp://", "smtps://")):
            raise ValueError("must start with smtp:// or smtps://")
        return value

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")


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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
