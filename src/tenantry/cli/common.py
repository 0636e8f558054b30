"""Shared CLI plumbing: settings, a unit of work as the system principal, error display."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.panel import Panel

from tenantry.authz import system_principal
from tenantry.config import ConfigError, Settings, load_settings
from tenantry.db.session import Database
from tenantry.errors import DomainError
from tenantry.services.context import RequestMeta, ServiceContext

console = Console()
err_console = Console(stderr=True)


def settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@contextmanager
def system_context(reason: str) -> Iterator[ServiceContext]:
    """A committed unit of work acting as the system (audited as `system`, reason = the command)."""
    s = settings()
    db = Database(s.database_url, s)
    try:
        with db.unit_of_work() as session:
            yield ServiceContext(
                session=session,
                principal=system_principal(reason),
                meta=RequestMeta(user_agent="tenantry-cli"),
            )
    except DomainError as exc:
        err_console.print(
            Panel(f"{exc.detail}\n[dim]code: {exc.code}[/dim]", title="Error", border_style="red")
        )
        raise typer.Exit(1) from None
    finally:
        db.dispose()
