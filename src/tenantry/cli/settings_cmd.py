"""`tenantry settings show|set|reset [--tenant T]`: the typed settings catalog, system or a tenant's."""

from __future__ import annotations

import json
from typing import Any

import typer

from tenantry.cli.common import OUTPUT_OPTION, Output, console, emit, system_context
from tenantry.services import settings as settings_service
from tenantry.services import tenants
from tenantry.services.settings import CategoryView

app = typer.Typer(
    no_args_is_help=True, help="Show and change settings (system, or a tenant's with --tenant)."
)

TENANT_OPTION: Any = typer.Option(None, "--tenant", "-t", help="A tenant's settings (default: system)")
COLUMNS = ["category", "key", "value", "source", "tenant_overridable"]


def _rows(views: dict[str, CategoryView]) -> list[dict[str, Any]]:
    return [
        {
            "category": category,
            "key": key,
            "value": v.value,
            "source": v.source,
            "tenant_overridable": v.tenant_overridable,
        }
        for category, keys in views.items()
        for key, v in keys.items()
    ]


def _emit(views: dict[str, CategoryView], output: Output) -> None:
    rows = _rows(views)
    if output is Output.table:
        rows = [{**r, "value": json.dumps(r["value"])} for r in rows]
    emit(rows, COLUMNS, output)


def parse_value(raw: str) -> Any:
    """JSON when it parses (`true`, `30`, `["a"]`, `null`), else the text as given."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


@app.command("show")
def show(
    category: str = typer.Argument(None, help="One category (default: all)"),
    tenant: str = TENANT_OPTION,
    output: Output = OUTPUT_OPTION,
) -> None:
    with system_context("cli settings show") as ctx:
        if tenant:
            t = tenants.find_visible(ctx, tenant)
            views = (
                {category: settings_service.get_tenant_category(ctx, t, category)}
                if category
                else settings_service.get_tenant_settings(ctx, t)
            )
        else:
            views = (
                {category: settings_service.get_system_category(ctx, category)}
                if category
                else settings_service.get_system_settings(ctx)
            )
    _emit(views, output)


@app.command("set")
def set_(
    category: str,
    key: str,
    value: str = typer.Argument(..., help='A JSON value (true, 30, "text") or plain text'),
    tenant: str = TENANT_OPTION,
    output: Output = OUTPUT_OPTION,
) -> None:
    with system_context("cli settings set") as ctx:
        changes = {key: parse_value(value)}
        if tenant:
            view = settings_service.update_tenant_settings(
                ctx, tenants.find_visible(ctx, tenant), category, changes
            )
        else:
            view = settings_service.update_system_settings(ctx, category, changes)
    if output is Output.json:
        _emit({category: view}, output)
    else:
        console.print(f"{category}.{key} = {json.dumps(view[key].value)} ({view[key].source})")


@app.command("reset")
def reset(category: str, key: str, tenant: str = typer.Option(..., "--tenant", "-t")) -> None:
    """A tenant's override goes; the system value applies again."""
    with system_context("cli settings reset") as ctx:
        view = settings_service.reset_tenant_setting(ctx, tenants.find_visible(ctx, tenant), category, key)
    console.print(f"{category}.{key} = {json.dumps(view[key].value)} ({view[key].source})")
