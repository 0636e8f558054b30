"""`tenantry resources export|import`: a tenant's resources as JSON lines."""

from __future__ import annotations

import json
import sys
import uuid
from typing import Any

import typer
from rich.progress import Progress
from sqlalchemy import func, select

from tenantry.cli.common import console, system_context
from tenantry.db.tables import Resource, ResourceType
from tenantry.services import resources, tenants

app = typer.Typer(no_args_is_help=True, help="Export and import a tenant's resources.")


@app.command("export")
def export(tenant: str, output: typer.FileTextWrite = typer.Option("-", "--output", "-o")) -> None:
    """Parents before children, so an import can resolve them in one pass."""
    with system_context("cli resources export") as ctx:
        tenants.enter_tenant(ctx, tenant)
        total = ctx.session.scalar(select(func.count()).select_from(Resource)) or 0
        with Progress(disable=output is sys.stdout or not sys.stderr.isatty()) as progress:
            task = progress.add_task("exporting", total=total)
            level = select(Resource).where(Resource.parent_id.is_(None))
            while True:
                batch = list(ctx.session.scalars(level.order_by(Resource.id)))
                if not batch:
                    break
                for r in batch:
                    output.write(
                        json.dumps(
                            {
                                "id": str(r.id),
                                "type": r.type,
                                "name": r.name,
                                "attributes": r.attributes,
                                "parent_id": str(r.parent_id) if r.parent_id else None,
                            }
                        )
                        + "\n"
                    )
                    progress.advance(task)
                level = select(Resource).where(Resource.parent_id.in_([r.id for r in batch]))


def _remap(attrs: dict[str, Any], refs: dict[str, str], ids: dict[str, str]) -> dict[str, Any]:
    out = dict(attrs)
    for field in refs:
        if isinstance(out.get(field), str) and out[field] in ids:
            out[field] = ids[out[field]]
    return out


@app.command("import")
def import_(tenant: str, source: typer.FileText = typer.Option("-", "--input", "-i")) -> None:
    """Create the resources in `tenant` with new ids; parents and references are remapped."""
    lines = [json.loads(line) for line in source if line.strip()]
    ids: dict[str, str] = {}
    pending = lines
    with system_context("cli resources import") as ctx:
        tenants.enter_tenant(ctx, tenant)
        refs = {t.key: t.references for t in ctx.session.scalars(select(ResourceType))}
        with Progress(disable=not sys.stderr.isatty()) as progress:
            task = progress.add_task("importing", total=len(lines))
            while pending:
                later = []
                for row in pending:
                    parent = row.get("parent_id")
                    waiting = [
                        v
                        for f, v in row["attributes"].items()
                        if f in refs.get(row["type"], {})
                        and isinstance(v, str)
                        and v not in ids
                        and any(o["id"] == v for o in pending)
                    ]
                    if (parent and parent not in ids) or waiting:
                        later.append(row)
                        continue
                    r = resources.create_resource(
                        ctx,
                        type=row["type"],
                        name=row["name"],
                        attributes=_remap(row["attributes"], refs.get(row["type"], {}), ids),
                        parent_id=uuid.UUID(ids[parent]) if parent else None,
                    )
                    ids[row["id"]] = str(r.id)
                    progress.advance(task)
                if len(later) == len(pending):
                    raise typer.BadParameter("unresolvable parents or references in the input")
                pending = later
    console.print(f"[green]imported[/green] {len(ids)} resources into {tenant}")
