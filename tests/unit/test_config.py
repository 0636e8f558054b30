"""Settings from TENANTRY_* variables: a bad value stops start-up with a message naming it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tenantry.cli import app
from tenantry.cli import serve as serve_module
from tenantry.cli.server import ServeOptions
from tenantry.config import ConfigError, load_settings
from tests.backends import Backend

BAD_VALUES = [
    ("TENANTRY_DATABASE_URL", "mysql://x"),
    ("TENANTRY_DATABASE_URL", "not a url"),
    ("TENANTRY_MIGRATION_DATABASE_URL", "mysql://x"),
    ("TENANTRY_MAX_BODY_BYTES", "abc"),
    ("TENANTRY_MAX_BODY_BYTES", "10"),
    ("TENANTRY_ARGON2_MEMORY_KIB", "4"),
    ("TENANTRY_LOG_LEVEL", "LOUD"),
    ("TENANTRY_LOG_FORMAT", "xml"),
    ("TENANTRY_RUN_JOBS", "perhaps"),
    ("TENANTRY_SESSION_IDLE_MINUTES", "0"),
    ("TENANTRY_SMTP_URL", "http://mail.example.com"),
    ("TENANTRY_REDIS_URL", "http://cache.example.com"),
    ("TENANTRY_PUBLIC_URL", "tenantry.example.com"),
]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No `.env` from the working directory, and no cached settings either side of the test."""
    monkeypatch.chdir(tmp_path)
    yield


@pytest.mark.parametrize(("name", "value"), BAD_VALUES)
def test_load_settings_bad_value_raises_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert name in str(caught.value)


def test_load_settings_names_every_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANTRY_MAX_BODY_BYTES", "abc")
    monkeypatch.setenv("TENANTRY_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "TENANTRY_MAX_BODY_BYTES" in str(caught.value)
    assert "TENANTRY_LOG_FORMAT" in str(caught.value)


def test_load_settings_error_does_not_echo_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANTRY_DATABASE_URL", "mysql://admin:hunter2-secret@db.example.com/app")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "hunter2-secret" not in str(caught.value)


def test_load_settings_bad_override_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="TENANTRY_DATABASE_URL"):
        load_settings(database_url="oracle://x")


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///./var/tenantry.db",
        "postgresql://app@127.0.0.1:5432/tenantry",
        "postgresql+psycopg://app@127.0.0.1/tenantry",
        "postgres://app@127.0.0.1/tenantry",
    ],
)
def test_load_settings_accepts_supported_database_urls(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("TENANTRY_DATABASE_URL", url)
    assert load_settings().database_url == url


def test_load_settings_reads_good_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANTRY_LOG_FORMAT", "text")
    monkeypatch.setenv("TENANTRY_MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("TENANTRY_REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("TENANTRY_PUBLIC_URL", "https://tenantry.example.com")
    s = load_settings()
    assert (s.log_format, s.max_body_bytes) == ("text", 2048)
    assert (s.redis_url, s.public_url) == ("redis://127.0.0.1:6379/0", "https://tenantry.example.com")


@pytest.mark.parametrize(("url", "expected"), [("sqlite:///x.db", False), ("postgres://a@b/c", True)])
def test_settings_is_postgres_follows_the_url(url: str, expected: bool) -> None:
    assert load_settings(database_url=url).is_postgres is expected


def test_load_settings_reads_a_dot_env_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TENANTRY_MAX_BODY_BYTES=4096\n")
    assert load_settings().max_body_bytes == 4096


def test_load_settings_bad_value_in_dot_env_names_the_variable(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TENANTRY_LOG_FORMAT=xml\n")
    with pytest.raises(ConfigError, match="TENANTRY_LOG_FORMAT"):
        load_settings()


@pytest.mark.parametrize(("name", "value"), BAD_VALUES[:6])
def test_serve_with_bad_value_exits_non_zero_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    started: list[object] = []
    monkeypatch.setattr(serve_module, "run_server", lambda options: started.append(options) or 0)
    result = CliRunner().invoke(app, ["serve"], env={name: value})
    assert result.exit_code != 0
    assert name in result.stderr
    assert started == []


def test_serve_with_good_settings_starts_uvicorn(monkeypatch: pytest.MonkeyPatch, backend: Backend) -> None:
    started: list[ServeOptions] = []
    monkeypatch.setattr(serve_module, "run_server", lambda options: started.append(options) or 0)
    env = {"TENANTRY_MAX_BODY_BYTES": "2048", "TENANTRY_DATABASE_URL": backend.app_url}  # a migrated one
    result = CliRunner().invoke(app, ["serve", "--port", "8123"], env=env)
    assert result.exit_code == 0
    assert [options.port for options in started] == [8123]


def test_readme_configuration_table_matches_the_settings() -> None:
    """Every setting is documented, and the README documents nothing that no setting reads."""
    import re

    from tenantry.config import Settings

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set()
    for name in re.findall(r"`(TENANTRY_[A-Z0-9_.]+)`", table):
        documented.add(name)
    # `TENANTRY_PASSWORD_MIN_LENGTH` / `..._WITH_2FA` style rows abbreviate the second name.
    for first, suffix in re.findall(r"`(TENANTRY_[A-Z0-9_]+)` / `\.\.\.(_[A-Z0-9_]+)`", table):
        documented.add(first + suffix)
    documented = {d for d in documented if not d.endswith(".")}
    settings = {"TENANTRY_" + name.upper() for name in Settings.model_fields}
    assert sorted(settings - documented) == [], "settings missing from the README"
    assert sorted(documented - settings) == [], "README rows that no setting reads"
