"""The trash at scale, in-process through the services (no HTTP): SQLite, and PostgreSQL when set.

1. Delete, restore and purge of a tenant with 100,000 resources (`--quick`: 10,000):
   `services.tenants.delete_tenant`, then `services.trash.restore_batch`, then
   delete again and `purge_batch`, each in its own `Database.unit_of_work()` as a
   system principal (commit included). Target: ≤ 10 s per operation.
2. A filtered resource list page, `list_resources(ctx, ResourceFilter(type="server",
   name="1"), limit=50)` in a tenant with 1,000,000 resources (`--quick`: 100,000) vs one
   with 10,000, p50 over interleaved calls (fresh unit of work each). Target: ≤ 1.5x.

Data: Core bulk inserts as the owner (three tenants in one database: the trash tenant, the
small and the large list tenants); the services run as the application role (on PostgreSQL a
plain role without BYPASSRLS, from `tests.backends.create_backend`). Prints; never asserts on
time.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import Options
from bench._harness import postgres_admin_url as _postgres_admin_url
from bench._harness import temporary_backend as _backend

OP_TARGET = 10.0  # seconds per delete / restore / purge
LIST_TARGET = 1.5  # large ÷ small list p50
LIST_SMALL = 10_000
CHUNK = 5_000


@dataclass(frozen=True)
class Sizes:
    trash: int
    list_large: int
    list_calls: int  # measured calls per tenant (after a warm-up of a tenth)

    @classmethod
    def for_options(cls, options: Options) -> Sizes:
        return cls(10_000, 100_000, 60) if options.quick else cls(100_000, 1_000_000, 300)


@dataclass
class BackendResults:
    name: str
    seed_seconds: float = 0.0
    ops: dict[str, tuple[float, dict[str, int]]] = field(default_factory=dict)  # seconds, counts
    lists: dict[str, list[float]] = field(default_factory=dict)  # label -> seconds per call
    list_rows: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _seed(owner_url: str, tenants: dict[str, int]) -> dict[str, uuid.UUID]:
    """One tenant per slug with that many `server` resources (Core bulk inserts as the owner)."""
    from sqlalchemy import insert, text

    from tenantry.db.engine import make_engine
    from tenantry.db.tables import Resource, Tenant
    from tenantry.db.types import utcnow
    from tenantry.ids import uuid7

    now = utcnow()
    ids: dict[str, uuid.UUID] = {}
    engine = make_engine(owner_url)
    try:
        with engine.begin() as conn:
            for slug, count in tenants.items():
                tid = ids[slug] = uuid7()
                conn.execute(
                    insert(Tenant.__table__),
                    [
                        {
                            "id": tid,
                            "slug": slug,
                            "name": slug,
                            "description": "",
                            "created_at": now,
                            "updated_at": now,
                        }
                    ],
                )
                for start in range(0, count, CHUNK):
                    conn.execute(
                        insert(Resource.__table__),
                        [
                            {
                                "tenant_id": tid,
                                "id": uuid7(),
                                "type": "server",
                                "name": f"server-{i:07d}",
                                "attributes": {},
                                "version": 1,
                                "created_at": now,
                                "updated_at": now,
                            }
                            for i in range(start, min(count, start + CHUNK))
                        ],
                    )
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()
    return ids


@contextlib.contextmanager
def _ctx(db: Any) -> Iterator[Any]:
    from tenantry.authz import system_principal
    from tenantry.services.context import ServiceContext

    with db.unit_of_work() as session:
        yield ServiceContext(session=session, principal=system_principal("bench"))


def _timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _trash_ops(db: Any, slug: str, res: BackendResults) -> None:
    from tenantry.services import tenants, trash

    def delete() -> tuple[uuid.UUID, dict[str, int]]:
        with _ctx(db) as ctx:
            tenant = tenants.find_visible(ctx, slug)
            ctx.enter(tenant)  # as `DELETE /api/v1/tenants/{tenant}` does
            return tenants.delete_tenant(ctx, tenant)

    def restore(batch_id: uuid.UUID) -> dict[str, int]:
        with _ctx(db) as ctx:
            return trash.restore_batch(ctx, batch_id)

    def purge(batch_id: uuid.UUID) -> dict[str, int]:
        with _ctx(db) as ctx:
            return trash.purge_batch(ctx, batch_id, confirm=True)

    seconds, (batch_id, counts) = _timed(delete)
    res.ops["delete tenant"] = (seconds, counts)
    seconds, counts = _timed(lambda: restore(batch_id))
    res.ops["restore batch"] = (seconds, counts)
    seconds, (batch_id, counts) = _timed(delete)
    res.ops["delete tenant (again)"] = (seconds, counts)
    seconds, counts = _timed(lambda: purge(batch_id))
    res.ops["purge batch"] = (seconds, counts)


def _list_pages(db: Any, labels: dict[str, str], calls: int, res: BackendResults) -> None:
    """Interleaved calls (A B A B …): a fresh unit of work each, timing the service call only."""
    from tenantry.services import resources, tenants
    from tenantry.services.resources import ResourceFilter

    flt = ResourceFilter(type="server", name="1")

    def one(slug: str) -> tuple[float, int]:
        with _ctx(db) as ctx:
            ctx.enter(tenants.find_visible(ctx, slug))
            seconds, page = _timed(lambda: resources.list_resources(ctx, flt, limit=50))
            return seconds, len(page.items)

    warmup = max(3, calls // 10)
    for _ in range(warmup):
        for slug in labels.values():
            one(slug)
    res.lists = {label: [] for label in labels}
    for _ in range(calls):
        for label, slug in labels.items():
            seconds, rows = one(slug)
            res.lists[label].append(seconds)
            res.list_rows[label] = rows


def _bench_backend(name: str, tmp: Path, sizes: Sizes, console: Console) -> BackendResults:
    from tenantry.db.session import Database
    from tenantry.services import resource_types

    res = BackendResults(name)
    work = tmp / name
    work.mkdir()
    small_label = f"{LIST_SMALL:,} resources"
    large_label = f"{sizes.list_large:,} resources"
    with _backend(name, work) as backend:
        started = time.monotonic()
        _seed(
            backend.owner_url,
            {"trash-me": sizes.trash, "list-small": LIST_SMALL, "list-large": sizes.list_large},
        )
        res.seed_seconds = time.monotonic() - started
        console.print(
            f"[dim]{name}: seeded {sizes.trash:,} + {LIST_SMALL:,} + {sizes.list_large:,} resources "
            f"in {res.seed_seconds:.1f} s[/dim]"
        )
        db = Database(backend.app_url)
        try:
            with _ctx(db) as ctx:  # as `tenantry init` does: the built-in types, `server` among them
                resource_types.ensure_builtin_types(ctx)
            console.print(f"[dim]{name}: list pages ({sizes.list_calls} calls per tenant, interleaved)[/dim]")
            _list_pages(db, {small_label: "list-small", large_label: "list-large"}, sizes.list_calls, res)
            console.print(f"[dim]{name}: delete / restore / purge of {sizes.trash:,} resources[/dim]")
            _trash_ops(db, "trash-me", res)
        finally:
            db.dispose()
    for label, (_s, counts) in res.ops.items():
        got = counts.get("resources", 0)
        if got != sizes.trash:
            res.notes.append(f"{label}: {got:,} resources counted, expected {sizes.trash:,}")
    return res


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


def _mark(ok: bool) -> str:
    return "[green]✔ pass[/green]" if ok else "[red]✘ miss[/red]"


def _print(results: list[BackendResults], sizes: Sizes, console: Console) -> None:
    t = Table(
        title=f"Trash: a tenant with {sizes.trash:,} resources, through the services (one unit of work each)",
        title_justify="left",
    )
    for col in ("backend", "operation", "seconds", "rows/s", "counts", "target", "result"):
        t.add_column(col, justify="left" if col in ("backend", "operation", "counts") else "right")
    for res in results:
        for label, (seconds, counts) in res.ops.items():
            rows = sum(counts.values())
            t.add_row(
                res.name,
                label,
                f"{seconds:.2f}",
                f"{rows / seconds:,.0f}" if seconds else "—",
                ", ".join(f"{k} {v:,}" for k, v in sorted(counts.items())),
                f"≤ {OP_TARGET:.0f} s",
                _mark(seconds <= OP_TARGET),
            )
    console.print(t)
    t = Table(
        title='list_resources(type="server", name="1", limit=50) as a system principal in the tenant',
        title_justify="left",
        caption="calls interleaved between the two tenants; fresh unit of work per call, service call timed",
        caption_justify="left",
    )
    for col in (
        "backend",
        "tenant",
        "rows",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "calls",
        "÷ small p50",
        "target",
        "result",
    ):
        t.add_column(col, justify="left" if col in ("backend", "tenant") else "right")
    for res in results:
        base = None
        for label, values in res.lists.items():
            p50 = statistics.median(values) * 1000
            if base is None:
                base, ratio, target, mark = p50, "", "", ""
            else:
                r = p50 / base if base else float("inf")
                ratio, target, mark = f"{r:.2f}x", f"≤ {LIST_TARGET}x", _mark(r <= LIST_TARGET)
            t.add_row(
                res.name,
                label,
                str(res.list_rows.get(label, 0)),
                f"{p50:.2f}",
                f"{_pct(values, 90) * 1000:.2f}",
                f"{_pct(values, 99) * 1000:.2f}",
                str(len(values)),
                ratio,
                target,
                mark,
            )
    console.print(t)
    for res in results:
        for note in res.notes:
            console.print(f"[yellow]{res.name}: {note}[/yellow]")


def run(options: Options) -> None:
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=150)
    sizes = Sizes.for_options(options)
    names = ["sqlite"] + (["postgres"] if _postgres_admin_url() else [])
    if len(names) == 1:
        console.print(
            "[dim]PostgreSQL skipped: set TENANTRY_BENCH_POSTGRES_URL or TENANTRY_TEST_POSTGRES_URL[/dim]"
        )
    results = []
    with tempfile.TemporaryDirectory(prefix="tenantry-bench-") as tmp:
        for name in names:
            results.append(_bench_backend(name, Path(tmp), sizes, console))
    _print(results, sizes, console)
