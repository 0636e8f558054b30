"""Shared CLI plumbing: settings, a unit of work as the system principal, output, exit codes.

Every admin command acts as the system principal (audited as `system`, reason = the command) and
calls the same services as the API and the console. The exit codes are one table, `EXIT_CODES`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.panel import Panel
from rich.table import Table

from tenantry.authz import system_principal
from tenantry.config import ConfigError, Settings, load_settings
from tenantry.db.session import Database
from tenantry.errors import (
    Conflict,
    DomainError,
    Invalid,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    Unauthenticated,
)
from tenantry.services.context import RequestMeta, ServiceContext

console = Console()
err_console = Console(stderr=True)

# The exit codes (README "CLI"): 0 done; 1 any other refusal by a service; 2 bad input or usage
# (also: a destructive command run without a terminal and without --yes); 3 not permitted;
# 4 not found; 5 conflict with the current state.
EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_INVALID = 2
EXIT_FORBIDDEN = 3
EXIT_NOT_FOUND = 4
EXIT_CONFLICT = 5
EXIT_CODES: tuple[tuple[type[DomainError], int], ...] = (
    (NotFound, EXIT_NOT_FOUND),
    (PermissionDenied, EXIT_FORBIDDEN),
    (Unauthenticated, EXIT_FORBIDDEN),
    (Invalid, EXIT_INVALID),
    (Conflict, EXIT_CONFLICT),
    (PreconditionFailed, EXIT_CONFLICT),
)


def exit_code_for(exc: DomainError) -> int:
    for kind, code in EXIT_CODES:
        if isinstance(exc, kind):
            return code
    return EXIT_REFUSED


class Output(StrEnum):
    table = "table"
    json = "json"


OUTPUT_OPTION: Any = typer.Option(Output.table, "--output", help="table for people, json for scripts")
YES_OPTION: Any = typer.Option(False, "--yes", "-y", help="Do not ask (needed without a terminal)")


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
        raise typer.Exit(exit_code_for(exc)) from None
    finally:
        db.dispose()


def enter_if_given(ctx: ServiceContext, tenant: str | None) -> None:
    """`--tenant T` selects that tenant (the service's own lookup and rules); none: global."""
    if tenant:
        from tenantry.services import tenants

        tenants.enter_tenant(ctx, tenant)


def confirm(question: str, yes: bool) -> None:
    """Ask before a destructive step; without a terminal, refuse unless --yes (exit 2)."""
    if yes:
        return
    if not sys.stdin.isatty():
        err_console.print(f"[red]{question}[/red] refused: no terminal to ask; pass --yes")
        raise typer.Exit(EXIT_INVALID)
    if not typer.confirm(question):
        raise typer.Abort()


def _jsonable(value: Any) -> Any:
    return str(value) if not isinstance(value, (str, int, float, bool, type(None), list, dict)) else value


def emit(rows: Sequence[dict[str, Any]], columns: Sequence[str], output: Output, *, title: str = "") -> None:
    """A listing: a Rich table whose id columns are never cut, or a JSON array."""
    if output is Output.json:
        typer.echo(json.dumps([{k: _jsonable(v) for k, v in r.items()} for r in rows], default=str))
        return
    table = Table(title=title or None)
    cells = [["" if r.get(c) is None else str(_cell(r.get(c))) for c in columns] for r in rows]
    for i, c in enumerate(columns):
        if c in ("id", "batch") or c.endswith("_id"):
            table.add_column(c, no_wrap=True, min_width=36, overflow="fold")
        else:  # wrap between words, but never narrower than the longest word (a slug, an email)
            words = [len(w) for row in cells for w in row[i].split()] + [len(c)]
            table.add_column(c, min_width=min(max(words), 40), overflow="fold")
    for row in cells:
        table.add_row(*row)
    # Fit the terminal; where even the narrowest layout is wider, print it wider rather than cut.
    needed = Measurement.get(console, console.options.update(width=10_000), table).minimum
    console.print(table, width=max(console.width, needed), crop=False)


def _cell(value: Any) -> Any:
    return ", ".join(map(str, value)) if isinstance(value, list) else value


def emit_one(obj: dict[str, Any], output: Output) -> None:
    """One object: key/value lines, or a JSON object."""
    if output is Output.json:
        typer.echo(json.dumps({k: _jsonable(v) for k, v in obj.items()}, default=str))
        return
    table = Table(show_header=False, box=None)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for k, v in obj.items():
        table.add_row(k, "" if v is None else str(_cell(v)))
    console.print(table)
