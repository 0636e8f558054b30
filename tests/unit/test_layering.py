"""Imports point down only, and table internals stay where they belong (read from the source, `ast`)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

# package → imports it must never make (a module, or any module below it)
FORBIDDEN = {
    "tenantry.services": ["fastapi", "starlette", "typer", "jinja2"]
    + [f"tenantry.{p}" for p in ("api", "web", "cli", "jobs")],
    "tenantry.db": [f"tenantry.{p}" for p in ("services", "authz", "api", "web", "cli", "jobs", "mail")],
    "tenantry.authz": [f"tenantry.{p}" for p in ("services", "api", "web", "cli", "jobs")],
    "tenantry.security": [f"tenantry.{p}" for p in ("db", "services", "api")],
    "tenantry.mail": [f"tenantry.{p}" for p in ("api", "web", "cli")],
}
# The scoping escapes anyone may use; every other name of db/scoping.py is its own business.
SCOPING = "tenantry.db.scoping"
SCOPING_PUBLIC = {"cross_tenant", "include_deleted", "in_tenant", "enter_tenant", "current_tenant"}
# Core tables (`Model.__table__`) skip the automatic tenant and trash filters: only here.
TABLE_ALLOWED = {
    "tenantry.db",  # the data layer itself: tables, scoping, RLS, migrations, `db/core.py`
}


def _under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _modules() -> list[tuple[str, ast.Module]]:
    return [
        (
            ".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__"),
            ast.parse(p.read_text()),
        )
        for p in sorted((SRC / "tenantry").rglob("*.py"))
    ]


def _violations(module: str, tree: ast.Module) -> list[str]:
    rules = [bad for pkg, bads in FORBIDDEN.items() if _under(module, pkg) for bad in bads]
    scoping_aliases = {SCOPING}
    out: list[str] = []
    for node in ast.walk(tree):
        imported: list[str] = []
        if isinstance(node, ast.Import):
            imported = [a.name for a in node.names]
            scoping_aliases |= {a.asname for a in node.names if a.name == SCOPING and a.asname}
        elif isinstance(node, ast.ImportFrom) and node.level:
            out.append(
                f"{module}:{node.lineno} uses a relative import (the layering check reads absolute ones)"
            )
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            scoping_aliases |= {
                a.asname or a.name for a in node.names if f"{node.module}.{a.name}" == SCOPING
            }
            if node.module == SCOPING and not _under(module, "tenantry.db"):
                imported += [f"{SCOPING}:{a.name}" for a in node.names if a.name not in SCOPING_PUBLIC]
        for name in imported:
            if any(_under(name, bad) for bad in rules) or ":" in name:
                out.append(f"{module}:{node.lineno} imports {name}")
        if isinstance(node, ast.Attribute):
            if node.attr == "__table__" and not any(_under(module, ok) for ok in TABLE_ALLOWED):
                out.append(f"{module}:{node.lineno} uses {ast.unparse(node)}")
            if (
                ast.unparse(node.value) in scoping_aliases
                and node.attr not in SCOPING_PUBLIC
                and not _under(module, "tenantry.db")
            ):
                out.append(f"{module}:{node.lineno} uses scoping internal {ast.unparse(node)}")
    return out


def test_imports_point_down_and_table_internals_stay_in_their_allowlist() -> None:
    found = sorted({v for module, tree in _modules() for v in _violations(module, tree)})
    assert not found, "layering violations:\n" + "\n".join(found)


def test_the_rules_see_a_violation() -> None:
    """The checker itself: a service importing FastAPI, a Core table, a scoping internal."""
    bad = ast.parse(
        "import fastapi\nfrom tenantry.db import scoping\nfrom tenantry.db.scoping import _sync\n"
        "scoping._TENANT\nUser.__table__\n"
    )
    found = _violations("tenantry.services.example", bad)
    assert [f.split(" ", 1)[0] for f in found] == [f"tenantry.services.example:{n}" for n in (1, 3, 4, 5)]
