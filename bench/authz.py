"""The authorization engine (`tenantry.authz.engine`) against a large synthetic policy.

Policy: 1,000 tenants, 20,000 users with 1-3 memberships each, the built-in roles `tenant_admin`,
`member`, `viewer`, `auditor` over the permission catalog, a tenant grant per membership (some
memberships have two, some only resource grants), 5 resources per tenant and resource grants.
Bulk-inserted with SQLAlchemy Core as the owner into a migrated throw-away database
(`tests.backends.create_backend`); the engine then reads it as the application role.

1. `check()` decisions/s on a warm cache over a random (user, tenant, permission) stream, vs
   pycasbin's RBAC-with-domains `enforce()` on the same policy in its fastest configuration
   (target ≥ 50x) and vs a bare precomputed `dict[(user, tenant)] -> frozenset` lookup (target:
   within 3x). The three must agree on every decision of a sample.
2. A `visible_filter` list page (first 50 ids by id) for a user holding only resource grants,
   in a tenant with 1,000,000 resources vs one with 10,000 (target p50 ≤ 1.5x).
3. The permission cache's memory after warming every (user, tenant) pair of 20,000 users.
4. How long a grant change takes to reach the next decision: through `services.grants` on this
   instance, and as a raw write plus version bump by "another instance".

`--quick`: 2,000 users over 100 tenants and 100,000 resources in the big tenant, shorter runs.
Runs on SQLite, and on PostgreSQL when TENANTRY_BENCH_POSTGRES_URL or
TENANTRY_TEST_POSTGRES_URL is set (throw-away database and plain app role, dropped afterwards).
Prints tables; never asserts on time.
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import random
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import Options
from bench._harness import postgres_admin_url as _postgres_admin_url
from bench._harness import temporary_backend as _backend

SEED = 20240607
PAGE_PERM = "project.read"
PAGE_ROOTS = 60  # granted resources in each page tenant; each has 2 children → 180 visible
PAGE_SIZE = 50
CHECK_TARGET = 50.0  # check() ≥ 50x casbin's fastest enforce()
BARE_TARGET = 3.0  # check() within 3x of a bare frozenset lookup
PAGE_TARGET = 1.5  # p50 with 1,000,000 resources ≤ 1.5x p50 with 10,000
ROLE_WEIGHTS = {
    "tenant_admin": 5,
    "member": 55,
    "viewer": 25,
    "auditor": 10,
    None: 5,
}  # None: resource grants only


@dataclass(frozen=True)
class Sizes:
    tenants: int
    users: int
    small_resources: int
    big_resources: int
    stream: int  # decisions in the random stream
    seconds: float  # measuring time per throughput variant
    page_seconds: float  # measuring time budget per page variant
    page_max: int  # max page requests per variant
    flips: int  # grant/revoke round trips per variant
    page_cap: float  # seconds after which one page query is cancelled (recorded as "≥")

    @classmethod
    def for_quick(cls, quick: bool) -> Sizes:
        if quick:
            return cls(100, 2_000, 10_000, 100_000, 30_000, 1.0, 2.0, 60, 3, 5.0)
        return cls(1_000, 20_000, 10_000, 1_000_000, 100_000, 3.0, 6.0, 300, 10, 30.0)


# --------------------------------------------------------------------------- the synthetic policy


@dataclass
class Policy:
    """What was seeded, in Python: enough to build casbin's policy and the bare baseline."""

    tenants: list[uuid.UUID] = field(default_factory=list)
    users: list[uuid.UUID] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    # (user index, tenant index) → tenant-scope roles (possibly empty: resource grants only)
    roles: dict[tuple[int, int], list[str]] = field(default_factory=dict)
    admin_of: dict[int, int] = field(default_factory=dict)  # tenant index → a tenant_admin user index
    memberships: int = 0
    tenant_grants: int = 0
    resource_grants: int = 0
    resources: int = 0

    def user_tenants(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for u, t in self.roles:
            out.setdefault(u, []).append(t)
        return out


@dataclass
class PageTenant:
    tenant_id: uuid.UUID
    prefix: str  # resource ids: prefix (8 hex) + n (24 hex): id order = n order
    size: int
    first_page: list[uuid.UUID] = field(default_factory=list)


def _weighted_role(rnd: random.Random) -> str | None:
    keys = list(ROLE_WEIGHTS)
    return rnd.choices(keys, weights=[ROLE_WEIGHTS[k] for k in keys])[0]


def _insert(conn: Any, table: Any, rows: list[dict[str, Any]], chunk: int = 5_000) -> None:
    from sqlalchemy import insert

    for i in range(0, len(rows), chunk):
        conn.execute(insert(table), rows[i : i + chunk])


def seed_policy(owner_url: str, sizes: Sizes) -> Policy:
    """Tenants, users, memberships, tenant and resource grants, a few resources per tenant."""
    from tenantry.db.engine import make_engine
    from tenantry.db.tables import Grant, Membership, Resource, Tenant, User
    from tenantry.db.types import utcnow
    from tenantry.ids import uuid7

    rnd = random.Random(SEED)
    now = utcnow()
    pol = Policy()
    tenants, users, members, grants, resources = [], [], [], [], []
    tenant_resources: list[list[uuid.UUID]] = []
    for i in range(sizes.tenants):
        tid = uuid7()
        pol.tenants.append(tid)
        tenants.append(
            {
                "id": tid,
                "slug": f"bench-{i:05d}",
                "name": f"Bench tenant {i}",
                "description": "",
                "created_at": now,
                "updated_at": now,
            }
        )
        rids = [uuid7() for _ in range(5)]
        tenant_resources.append(rids)
        resources.extend(
            {
                "tenant_id": tid,
                "id": rid,
                "type": "host",
                "name": f"host-{k}",
                "attributes": {},
                "created_at": now,
                "updated_at": now,
            }
            for k, rid in enumerate(rids)
        )
    for u in range(sizes.users):
        uid = uuid7()
        email = f"user{u:05d}@bench.example.com"
        pol.users.append(uid)
        pol.emails.append(email)
        users.append({"id": uid, "email": email, "created_at": now, "updated_at": now})
        for t in rnd.sample(range(sizes.tenants), rnd.randint(1, 3)):
            tid = pol.tenants[t]
            members.append(
                {"tenant_id": tid, "id": uuid7(), "user_id": uid, "created_at": now, "updated_at": now}
            )
            # Every tenant gets one admin (its first member); the others draw a role.
            role = "tenant_admin" if t not in pol.admin_of else _weighted_role(rnd)
            if t not in pol.admin_of:
                pol.admin_of[t] = u
            roles = [] if role is None else [role]
            if role in ("member", "viewer") and rnd.random() < 0.05:
                roles.append("auditor")  # some memberships carry two roles
            pol.roles[(u, t)] = roles
            for r in roles:
                grants.append(_grant(tid, uid, r, None, now))
            if role is None or rnd.random() < 0.05:  # resource grants: only-resource users and a few more
                for rid in rnd.sample(tenant_resources[t], rnd.randint(1, 2)):
                    grants.append(_grant(tid, uid, rnd.choice(["member", "viewer"]), rid, now))
                    pol.resource_grants += 1
    pol.memberships = len(members)
    pol.tenant_grants = len(grants) - pol.resource_grants
    pol.resources = len(resources)
    engine = make_engine(owner_url)
    try:
        with engine.begin() as conn:
            for table, rows in (
                (Tenant.__table__, tenants),
                (User.__table__, users),
                (Membership.__table__, members),
                (Resource.__table__, resources),
                (Grant.__table__, grants),
            ):
                _insert(conn, table, rows)
    finally:
        engine.dispose()
    return pol


def _grant(tid: uuid.UUID, uid: uuid.UUID, role: str, rid: uuid.UUID | None, now: Any) -> dict[str, Any]:
    from tenantry.ids import uuid7

    return {
        "tenant_id": tid,
        "id": uuid7(),
        "principal_type": "user",
        "principal_id": uid,
        "role_key": role,
        "resource_id": rid,
        "created_at": now,
    }


def _res_id(prefix: str, n: int) -> uuid.UUID:
    return uuid.UUID(f"{prefix}{n:024x}")


def seed_page_tenant(
    owner_url: str, slug: str, size: int, page_user: uuid.UUID, wide_user: uuid.UUID
) -> PageTenant:
    """A tenant with `size` resources, generated in SQL (recursive CTE / generate_series).

    PAGE_ROOTS `project` resources spread evenly over the id range, each with two `service`
    children; every other row is a parentless `host`. `page_user` holds `viewer` on the roots
    only (180 visible rows); `wide_user` holds `viewer` on the whole tenant.
    """
    from sqlalchemy import bindparam, text
    from sqlalchemy.types import Uuid

    from tenantry.db.engine import make_engine
    from tenantry.db.tables import Grant, Membership, Tenant
    from tenantry.db.types import UTCDateTime, utcnow
    from tenantry.ids import uuid7

    now = utcnow()
    tid = uuid7()
    prefix = uuid7().hex[:8]
    step = size // PAGE_ROOTS
    page = PageTenant(tid, prefix, size)
    roots = [k * step for k in range(PAGE_ROOTS)]
    visible = sorted(n for r in roots for n in (r, r + 1, r + 2))
    page.first_page = [_res_id(prefix, n) for n in visible[:PAGE_SIZE]]
    engine = make_engine(owner_url)
    pg = engine.dialect.name == "postgresql"
    if pg:
        rid = "(:prefix || lpad(to_hex(n), 24, '0'))::uuid"
        parent = "(:prefix || lpad(to_hex(n - n % :step), 24, '0'))::uuid"
        source = "FROM generate_series(CAST(:start AS bigint), CAST(:stop AS bigint) - 1) AS n"
        attrs = "'{}'::jsonb"
        head = ""
    else:
        rid = "printf('%s%024x', :prefix, n)"
        parent = "printf('%s%024x', :prefix, n - n % :step)"
        source = "FROM seq"
        attrs = "'{}'"
        head = "WITH RECURSIVE seq(n) AS (SELECT :start UNION ALL SELECT n + 1 FROM seq WHERE n < :stop - 1) "
    in_tree = f"n / :step < {PAGE_ROOTS}"
    sql = (
        f"{head}INSERT INTO resources (tenant_id, id, type, name, attributes, parent_id, version, "
        f"created_at, updated_at) SELECT :tid, {rid}, "
        f"CASE WHEN {in_tree} AND n % :step = 0 THEN 'project' "
        f"WHEN {in_tree} AND n % :step IN (1, 2) THEN 'service' ELSE 'host' END, "
        f"'r-' || CAST(n AS TEXT), {attrs}, "
        f"CASE WHEN {in_tree} AND n % :step IN (1, 2) THEN {parent} END, 1, :now, :now {source}"
    )
    stmt = text(sql).bindparams(bindparam("tid", type_=Uuid()), bindparam("now", type_=UTCDateTime()))
    try:
        with engine.begin() as conn:
            _insert(
                conn,
                Tenant.__table__,
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
            chunk = 250_000
            for start in range(0, size, chunk):
                conn.execute(
                    stmt,
                    {
                        "tid": tid,
                        "prefix": prefix,
                        "step": step,
                        "start": start,
                        "stop": min(size, start + chunk),
                        "now": now,
                    },
                )
            _insert(
                conn,
                Membership.__table__,
                [
                    {"tenant_id": tid, "id": uuid7(), "user_id": u, "created_at": now, "updated_at": now}
                    for u in (page_user, wide_user)
                ],
            )
            _insert(
                conn,
                Grant.__table__,
                [_grant(tid, page_user, "viewer", _res_id(prefix, r), now) for r in roots]
                + [_grant(tid, wide_user, "viewer", None, now)],
            )
        if pg:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))  # what autovacuum does after a bulk load
    finally:
        engine.dispose()
    return page


# --------------------------------------------------------------------------- measuring helpers


_T0 = time.monotonic()


def _say(console: Console, msg: str) -> None:
    console.print(f"[dim]{time.monotonic() - _T0:6.1f} s  {msg}[/dim]")


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


def deep_size(root: Any, shared: set[int]) -> int:
    """Bytes reachable from `root` (sys.getsizeof walk), each object once, `shared` ids excluded."""
    import enum

    seen = set(shared)
    total = 0
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, type | enum.Enum) or obj is None:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        else:
            d = getattr(obj, "__dict__", None)
            if d is not None:
                stack.append(d)
            for cls in type(obj).__mro__:
                for slot in getattr(cls, "__slots__", ()):
                    if slot != "__weakref__" and hasattr(obj, slot):
                        stack.append(getattr(obj, slot))
    return total


# --------------------------------------------------------------------------- casbin


CASBIN_MODEL_DOMAIN = """
[request_definition]
r = sub, dom, obj, act
[policy_definition]
p = sub, dom, obj, act
[role_definition]
g = _, _, _
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = g(r.sub, p.sub, r.dom) && r.dom == p.dom && r.obj == p.obj && r.act == p.act
"""

CASBIN_MODEL_SHARED = """
[request_definition]
r = sub, obj, act, dom
[policy_definition]
p = sub, obj, act
[role_definition]
g = _, _, _
[policy_effect]
e = some(where (p.eft == allow))
[matchers]
m = g(r.sub, p.sub, r.dom) && r.obj == p.obj && r.act == p.act
"""


def _split(perm: str) -> tuple[str, str]:
    obj, _, act = perm.partition(".")
    return obj, act


@dataclass
class CasbinVariant:
    label: str
    enforcer: Any
    load_seconds: float
    rules: int
    dom_last: bool  # request is (sub, obj, act, dom): FastEnforcer's index uses the same positions in both
    slow: bool = False  # scans every policy line: only a few decisions are sampled

    def args(self, sub: str, dom: str, obj: str, act: str) -> tuple[str, str, str, str]:
        return (sub, obj, act, dom) if self.dom_last else (sub, dom, obj, act)


def build_casbin(pol: Policy, quick: bool) -> list[CasbinVariant]:
    """The same policy in pycasbin, in the configurations worth trying, fastest last."""
    import casbin
    from casbin.model import FastModel

    from tenantry.authz.engine import role_permissions

    role_perms = {r: sorted(role_permissions(r)) for r in ("tenant_admin", "member", "viewer", "auditor")}
    links = [
        [str(pol.users[u]), r, str(pol.tenants[t])] for (u, t), roles in pol.roles.items() for r in roles
    ]
    shared = [[r, *_split(p)] for r, perms in role_perms.items() for p in perms]
    domains = [str(t) for t in pol.tenants]
    per_domain = [
        [r, str(t), *_split(p)] for t in pol.tenants for r, perms in role_perms.items() for p in perms
    ]
    variants = []

    def make(label: str, model_text: str, rules: list[list[str]], key_order: list[int] | None = None) -> None:
        t0 = time.perf_counter()
        if key_order is None:
            e = casbin.Enforcer(casbin.Enforcer.new_model(text=model_text))
        else:
            # FastEnforcer: policies indexed by the given fields, only the matching few are evaluated.
            model = FastModel(key_order)
            model.load_model_from_text(model_text)
            e = casbin.FastEnforcer(model, None, cache_key_order=key_order)
        # Best shot: exact role names (the domain role manager defaults to a `==` matching
        # function that makes every new name scan the domain's roles), links loaded in bulk, and
        # every domain's role manager built before timing (casbin builds them on first use).
        e.get_role_manager().add_matching_func(None)
        e.enable_auto_build_role_links(False)
        e.add_policies(rules)
        e.add_named_grouping_policies("g", links)
        e.build_role_links()
        for tid in domains:
            e.get_role_manager().has_link("", "", tid)
        variants.append(
            CasbinVariant(
                label,
                e,
                time.perf_counter() - t0,
                len(rules) + len(links),
                model_text is CASBIN_MODEL_SHARED,
                slow=key_order is None and len(rules) > 10_000,
            )
        )

    if not quick:  # the textbook configuration: every policy line scanned per decision
        make("casbin Enforcer, policies per domain (textbook)", CASBIN_MODEL_DOMAIN, per_domain)
    make("casbin Enforcer, role policies shared by all domains", CASBIN_MODEL_SHARED, shared)
    make(
        "casbin FastEnforcer, policies per domain, indexed by (dom, obj, act)",
        CASBIN_MODEL_DOMAIN,
        per_domain,
        key_order=[1, 2, 3],
    )
    make(
        "casbin FastEnforcer, shared role policies, indexed by (obj, act)",
        CASBIN_MODEL_SHARED,
        shared,
        key_order=[1, 2],
    )
    return variants


# --------------------------------------------------------------------------- one backend


@dataclass
class CheckResults:
    check_rate: float = 0.0
    check_fresh_rate: float = 0.0
    bare_rate: float = 0.0
    cold_rate: float = 0.0
    cold_pairs: int = 0
    casbin: list[tuple[CasbinVariant, float]] = field(default_factory=list)
    agree: int = 0
    disagree: int = 0
    stream: int = 0
    users: int = 0


@dataclass
class PageResult:
    label: str
    resources: int
    total_ms: list[float]
    sql_ms: list[float]
    plan: str = ""
    capped: bool = False  # cancelled after Sizes.page_cap seconds: the real time is longer


@dataclass
class FlipResult:
    label: str
    write_ms: list[float]
    next_ms: list[float]
    flipped: int
    tries: int


@dataclass
class BackendResults:
    name: str
    seed_seconds: float = 0.0
    big_seed_seconds: float = 0.0
    check: CheckResults = field(default_factory=CheckResults)
    pages: list[PageResult] = field(default_factory=list)
    memory_walk_mb: float = 0.0
    memory_traced_mb: float = 0.0
    distinct_sets: int = 0
    cache_entries: int = 0
    cache_pairs: int = 0
    cache_users: int = 0
    flips: list[FlipResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _principal(uid: uuid.UUID, email: str) -> Any:
    """A principal shaped like the one `services.auth.authenticate` builds for a session."""
    from tenantry.authz import Principal
    from tenantry.ids import uuid7

    return Principal(kind="user", user_id=uid, label=email, session_id=uuid7())


def _stream(pol: Policy, n: int) -> list[tuple[int, int, str]]:
    """Random decisions: a uniform user, one of their tenants (5%: any tenant), a uniform permission."""
    from tenantry.authz.catalog import CATALOG

    rnd = random.Random(SEED + 1)
    perms = sorted(CATALOG)
    by_user = pol.user_tenants()
    out = []
    for _ in range(n):
        u = rnd.randrange(len(pol.users))
        t = rnd.randrange(len(pol.tenants)) if rnd.random() < 0.05 else rnd.choice(by_user[u])
        out.append((u, t, rnd.choice(perms)))
    return out


def _interleaved(
    variants: list[tuple[str, Callable[[Sequence[Any]], None], Sequence[Any]]],
    seconds: float,
    rounds: int = 5,
    wall: frozenset[str] = frozenset(),
) -> dict[str, float]:
    """Median decisions per second per variant; rounds alternate so drift hits every variant alike.

    In-process deciders are timed in CPU seconds of this process (`time.process_time`): on a
    shared machine a descheduled round would otherwise count as slow. Variants named in `wall`
    wait on a database server and are timed on the wall clock.
    """
    sizes = {}
    for label, loop, items in variants:  # calibrate: items per round of about seconds / rounds
        n = 1
        while True:
            t0 = time.perf_counter()
            loop(items[:n])
            took = time.perf_counter() - t0
            if took > 0.05 or n >= len(items):
                break
            n = min(len(items), n * 4)
        sizes[label] = max(1, min(len(items), int(seconds / rounds / max(took / n, 1e-8))))
    rates: dict[str, list[float]] = {label: [] for label, _, _ in variants}
    for r in range(rounds):
        for label, loop, items in variants:
            clock = time.perf_counter if label in wall else time.process_time
            n = sizes[label]
            pos = (r * n) % max(1, len(items) - n + 1)
            chunk = items[pos : pos + n]
            t0 = clock()
            loop(chunk)
            rates[label].append(len(chunk) / max(clock() - t0, 1e-9))
    return {label: statistics.median(v) for label, v in rates.items()}


def bench_checks(
    db: Any,
    pol: Policy,
    sizes: Sizes,
    casbin_variants: list[CasbinVariant],
    console: Console,
    users_limit: int | None = None,
) -> tuple[CheckResults, list[Any]]:
    """Warm the cache (every pair of every user, or of the first `users_limit`), then race.

    With `users_limit` (the other backends) only the rows that touch the database are measured:
    the cold fill and a transaction per 10 decisions; a warm decision never reads the database,
    so the race against the bare table and casbin runs once, on the first backend.
    """
    from tenantry.authz import cache
    from tenantry.authz.engine import check, role_permissions
    from tenantry.db.engine import sqlite_write_intent

    sqlite_write_intent.set(False)  # read-only transactions, as the app does for GET
    res = CheckResults()
    principals = [_principal(uid, email) for uid, email in zip(pol.users, pol.emails, strict=True)]
    limit = users_limit or len(pol.users)
    raw = [d for d in _stream(pol, sizes.stream) if d[0] < limit]
    engine_items = [(principals[u], pol.tenants[t], perm) for u, t, perm in raw]
    bare_items = [(pol.users[u], pol.tenants[t], perm) for u, t, perm in raw]
    casbin_items = [(str(pol.users[u]), str(pol.tenants[t]), *_split(perm)) for u, t, perm in raw]

    # Bare baseline: the answer precomputed per (user, tenant).
    table = {
        (pol.users[u], pol.tenants[t]): frozenset().union(*(role_permissions(r) for r in roles))
        for (u, t), roles in pol.roles.items()
    }
    empty: frozenset[str] = frozenset()

    def bare(user: uuid.UUID, tenant: uuid.UUID, perm: str) -> bool:
        return perm in table.get((user, tenant), empty)

    # Cold: fill the cache with every (user, tenant) pair — memberships and the stream's strays.
    cache.CACHE.clear()
    cache.CACHE.version = -1
    pairs = list(
        dict.fromkeys(
            [(principals[u], pol.tenants[t]) for u, t in pol.roles if u < limit]
            + [(p, t) for p, t, _ in engine_items]
        )
    )
    _say(console, f"  warming the permission cache: {len(pairs):,} (user, tenant) pairs")
    t0 = time.perf_counter()
    for i in range(0, len(pairs), 200):
        with db.unit_of_work() as s:
            for p, t in pairs[i : i + 200]:
                check(s, p, "tenant.read", t)
    res.cold_rate = len(pairs) / (time.perf_counter() - t0)
    res.cold_pairs = len(pairs)

    # Agreement on a sample: the engine, the bare table and every casbin variant.
    sample = range(0, len(raw), max(1, len(raw) // 5_000))
    with db.unit_of_work() as s:
        for k, i in enumerate(sample):
            p, t, perm = engine_items[i]
            want = check(s, p, perm, t)
            got = [bare(*bare_items[i])] + [
                v.enforcer.enforce(*v.args(*casbin_items[i])) for v in casbin_variants if not v.slow or k < 5
            ]
            if all(g == want for g in got):
                res.agree += 1
            else:
                res.disagree += 1

    _say(console, "  racing check(), the bare table and casbin (interleaved rounds)")
    session = db.sessions()
    try:

        def engine_loop(items: Sequence[tuple[Any, uuid.UUID, str]]) -> None:
            for p, t, perm in items:
                check(session, p, perm, t)

        def fresh_loop(items: Sequence[tuple[Any, uuid.UUID, str]]) -> None:
            # A request: one transaction (its authz version read) and 10 decisions.
            for i in range(0, len(items), 10):
                with db.unit_of_work() as s:
                    for p, t, perm in items[i : i + 10]:
                        check(s, p, perm, t)

        def bare_loop(items: Sequence[tuple[uuid.UUID, uuid.UUID, str]]) -> None:
            for u, t, perm in items:
                bare(u, t, perm)

        loops: list[tuple[str, Callable[[Sequence[Any]], None], Sequence[Any]]] = [
            ("check", engine_loop, engine_items),
            ("fresh", fresh_loop, engine_items),
        ]
        if users_limit is None:
            loops.append(("bare", bare_loop, bare_items))
        for v in casbin_variants:

            def casbin_loop(
                items: Sequence[tuple[str, str, str, str]], enforce: Any = v.enforcer.enforce
            ) -> None:
                for item in items:
                    enforce(*item)

            loops.append((v.label, casbin_loop, [v.args(*item) for item in casbin_items]))
        rates = _interleaved(loops, sizes.seconds, wall=frozenset({"fresh"}))
    finally:
        session.close()
    res.check_rate, res.check_fresh_rate, res.bare_rate = rates["check"], rates["fresh"], rates.get("bare", 0)
    res.stream, res.users = len(raw), limit
    res.casbin = [(v, rates[v.label]) for v in casbin_variants]
    return res, principals


def measure_memory(res: BackendResults, pol: Policy) -> None:
    from tenantry.authz import cache
    from tenantry.authz.catalog import CATALOG

    data = cache.CACHE._data
    res.cache_entries = len(data)
    res.cache_pairs = sum(1 for k in data if isinstance(k, tuple) and k and not isinstance(k[0], str))
    res.cache_users = len(
        {k[0].user_id for k in data if isinstance(k, tuple) and k and not isinstance(k[0], str)}
    )
    # The catalog's permission strings exist anyway; everything else reachable from the cache counts.
    shared = {id(p) for p in CATALOG} | {id(True), id(False), id(None), id("u"), id("roles")}
    res.memory_walk_mb = deep_size(data, shared) / 1e6
    res.distinct_sets = len({id(v[1]) for v in data.values() if isinstance(v[1], frozenset)})
    # Cross-check with tracemalloc: allocate an equivalent structure (a pickle round trip).
    blob = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    copy = pickle.loads(blob)
    res.memory_traced_mb = (tracemalloc.get_traced_memory()[0] - before) / 1e6
    tracemalloc.stop()
    del copy, blob


@contextlib.contextmanager
def _time_limit(session: Any, seconds: float) -> Iterator[None]:
    """Cancel the statements run inside after `seconds` (SQLite: interrupt(); PostgreSQL: timeout)."""
    from sqlalchemy import text

    conn = session.connection()
    if conn.dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL statement_timeout = {int(seconds * 1000)}"))
        yield
        return
    timer = threading.Timer(seconds, conn.connection.driver_connection.interrupt)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def bench_pages(
    db: Any, page_user: Any, wide_user: Any, tenant: PageTenant, label: str, sizes: Sizes, explain: bool
) -> list[PageResult]:
    """The list page for both principals: warm-up, then repeated until the time budget is spent.

    A page slower than 1 s is a sample on its own (no warm-up); one slower than PAGE_CAP_S is
    cancelled and recorded as "≥ cap" so that a pathological plan cannot eat the whole run.
    """
    from sqlalchemy import select
    from sqlalchemy.exc import DBAPIError

    from tenantry.authz.engine import visible_filter
    from tenantry.db import scoping
    from tenantry.db.engine import sqlite_write_intent
    from tenantry.db.tables import Resource

    sqlite_write_intent.set(False)
    out = []
    for who, principal, expect in (
        ("resource grants only", page_user, tenant.first_page),
        ("tenant-wide grant", wide_user, None),
    ):
        total: list[float] = []
        sql: list[float] = []
        plan = ""
        capped = False
        seen: list[tuple[str, Any]] = []
        started = time.perf_counter()
        i = 0
        while True:
            t0 = time.perf_counter()
            t1 = t2 = t0
            try:
                with db.unit_of_work() as s:
                    scoping.enter_tenant(s, tenant.tenant_id)
                    cond = visible_filter(s, principal, PAGE_PERM, tenant.tenant_id)
                    stmt = (
                        select(Resource.id)
                        .where(Resource.tenant_id == tenant.tenant_id, cond)
                        .order_by(Resource.id)
                        .limit(PAGE_SIZE)
                    )
                    with _time_limit(s, sizes.page_cap), _capture(db.engine, i == 0) as seen_now:
                        t1 = time.perf_counter()
                        ids = list(s.scalars(stmt))
                        t2 = time.perf_counter()
                    seen = seen_now or seen
            except DBAPIError as exc:  # cancelled: interrupted (SQLite) or statement timeout (PostgreSQL)
                if time.perf_counter() - t1 < sizes.page_cap * 0.9:
                    raise
                seen = seen_now or seen
                capped = True
                total.append((time.perf_counter() - t0) * 1000)
                sql.append((time.perf_counter() - t1) * 1000)
                del exc
                break
            if i == 0:
                if expect is not None and ids != expect:
                    raise RuntimeError(f"{label}: unexpected page ({len(ids)} rows, first {ids[:1]})")
                if len(ids) != PAGE_SIZE:
                    raise RuntimeError(f"{label}: {len(ids)} rows instead of {PAGE_SIZE}")
            took = time.perf_counter() - t0
            slow = took > 1.0  # a page that slow is its own sample: no warm-up, few repetitions
            if i >= 3 or slow:  # warm-up: connection, statement caches
                total.append(took * 1000)
                sql.append((t2 - t1) * 1000)
            i += 1
            elapsed = time.perf_counter() - started
            if len(total) >= sizes.page_max or (
                total and elapsed > sizes.page_seconds and (slow or len(total) >= 5)
            ):
                break
        if explain and expect is not None and seen:
            plan = _explain(db, tenant.tenant_id, *seen[-1], analyze=not capped, cap=sizes.page_cap)
        out.append(PageResult(f"{label}, {who}", tenant.size, total, sql, plan, capped))
    return out


@contextlib.contextmanager
def _capture(engine: Any, active: bool = True) -> Iterator[list[tuple[str, Any]]]:
    from sqlalchemy import event

    seen: list[tuple[str, Any]] = []
    if not active:
        yield seen
        return

    def grab(_conn: Any, _cursor: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", grab)


def _explain(db: Any, tenant_id: uuid.UUID, statement: str, params: Any, *, analyze: bool, cap: float) -> str:
    """The plan of the page's statement exactly as it ran (captured from the cursor), untimed."""
    from tenantry.db import scoping

    with db.unit_of_work() as s:
        scoping.enter_tenant(s, tenant_id)
        conn = s.connection()
        if conn.dialect.name == "postgresql":
            how = "ANALYZE, BUFFERS, COSTS OFF" if analyze else "COSTS OFF"
            with _time_limit(s, cap):
                rows = conn.exec_driver_sql(f"EXPLAIN ({how}) " + statement, params)
                return "\n".join(r[0] for r in rows)
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)
        return "\n".join(f"  {r[3]}" for r in rows)


def bench_flips(
    db: Any, owner_url: str, pol: Policy, principals: list[Any], sizes: Sizes
) -> list[FlipResult]:
    """Grant `member` to a viewer and revoke it; time until the next decision says so."""
    from sqlalchemy import insert, update

    from tenantry.authz import cache
    from tenantry.authz.engine import check
    from tenantry.db.engine import make_engine, sqlite_write_intent
    from tenantry.db.tables import AuthzState, Grant, Tenant
    from tenantry.db.types import utcnow
    from tenantry.ids import uuid7
    from tenantry.services import grants
    from tenantry.services.context import ServiceContext

    # A viewer (no host.create) in a tenant, and that tenant's admin.
    (u, t) = next(k for k, roles in pol.roles.items() if roles == ["viewer"])
    tid, victim = pol.tenants[t], principals[u]
    admin = principals[pol.admin_of[t]]

    def decide() -> tuple[bool, float]:
        sqlite_write_intent.set(False)
        t0 = time.perf_counter()
        with db.unit_of_work() as s:
            ok = check(s, victim, "host.create", tid)
        return ok, (time.perf_counter() - t0) * 1000

    if decide()[0]:
        raise RuntimeError("the victim can already create hosts")
    out = []
    # 1. Through the service (authorization, audit, cache bump) on this instance.
    res = FlipResult("services.grants create/delete_grant, this instance", [], [], 0, 0)
    for _ in range(sizes.flips):
        for want in (True, False):
            sqlite_write_intent.set(True)
            t0 = time.perf_counter()
            with db.unit_of_work() as s:
                ctx = ServiceContext(session=s, principal=admin)
                ctx.enter(s.get(Tenant, tid))
                if want:
                    gid = grants.create_grant(
                        ctx, principal_type="user", principal_id=victim.user_id, role="member"
                    ).id
                else:
                    grants.delete_grant(ctx, gid)
            write = (time.perf_counter() - t0) * 1000
            got, next_ms = decide()
            res.write_ms.append(write)
            res.next_ms.append(next_ms)
            res.tries += 1
            res.flipped += got == want
    out.append(res)
    # 2. Another instance: its transaction writes the grant and bumps the version; this process's
    #    cache is not told (no after-commit hook here, no Redis), so the version read must catch it.
    res = FlipResult("raw grant + version bump by another instance", [], [], 0, 0)
    engine = make_engine(owner_url)
    try:
        for _ in range(sizes.flips):
            for want in (True, False):
                t0 = time.perf_counter()
                with engine.begin() as conn:
                    if want:
                        gid = uuid7()
                        conn.execute(
                            insert(Grant.__table__),
                            [_grant(tid, victim.user_id, "member", None, utcnow()) | {"id": gid}],
                        )
                    else:
                        conn.execute(
                            update(Grant.__table__)
                            .where(Grant.__table__.c.tenant_id == tid, Grant.__table__.c.id == gid)
                            .values(deleted_at=utcnow())
                        )
                    conn.execute(
                        update(AuthzState).where(AuthzState.id == 1).values(version=AuthzState.version + 1)
                    )
                write = (time.perf_counter() - t0) * 1000
                got, next_ms = decide()
                res.write_ms.append(write)
                res.next_ms.append(next_ms)
                res.tries += 1
                res.flipped += got == want
    finally:
        engine.dispose()
    out.append(res)
    cache.CACHE.clear()
    return out


def bench_backend(
    name: str, tmp: Path, sizes: Sizes, casbin_done: list[str], console: Console
) -> BackendResults:
    """Seed one backend and measure. The race with casbin and the bare table runs on the first."""
    from tenantry.authz import cache
    from tenantry.db.engine import make_engine
    from tenantry.db.session import Database
    from tenantry.db.tables import User
    from tenantry.db.types import utcnow
    from tenantry.ids import uuid7

    res = BackendResults(name)
    work = tmp / name
    work.mkdir()
    with _backend(name, work) as backend:
        t0 = time.perf_counter()
        pol = seed_policy(backend.owner_url, sizes)
        page_user, wide_user = uuid7(), uuid7()
        engine = make_engine(backend.owner_url)
        with engine.begin() as conn:
            now = utcnow()
            _insert(
                conn,
                User.__table__,
                [
                    {"id": u, "email": f"{n}@bench.example.com", "created_at": now, "updated_at": now}
                    for u, n in ((page_user, "page"), (wide_user, "wide"))
                ],
            )
        engine.dispose()
        small = seed_page_tenant(
            backend.owner_url, "bench-small", sizes.small_resources, page_user, wide_user
        )
        res.seed_seconds = time.perf_counter() - t0
        _say(
            console,
            f"{name}: seeded {len(pol.tenants):,} tenants, {len(pol.users):,} users, "
            f"{pol.memberships:,} memberships, {pol.tenant_grants:,} tenant grants, "
            f"{pol.resource_grants:,} resource grants, {pol.resources:,} resources "
            f"+ a tenant with {sizes.small_resources:,} resources in {res.seed_seconds:.1f} s",
        )
        first = not casbin_done
        variants = []
        if first:
            _say(console, "  loading the same policy into pycasbin")
            variants = build_casbin(pol, sizes.tenants < 1_000)
            casbin_done.append(name)
        db = Database(backend.app_url)
        try:
            limit = None if first else sizes.users // 40
            res.check, principals = bench_checks(db, pol, sizes, variants, console, limit)
            if first:
                measure_memory(res, pol)
            del variants
            pp = _principal(page_user, "page@bench.example.com")
            wp = _principal(wide_user, "wide@bench.example.com")
            _say(console, f"  list pages: tenant with {sizes.small_resources:,} resources")
            res.pages += bench_pages(db, pp, wp, small, f"{sizes.small_resources:,} resources", sizes, True)
            t0 = time.perf_counter()
            big = seed_page_tenant(backend.owner_url, "bench-big", sizes.big_resources, page_user, wide_user)
            res.big_seed_seconds = time.perf_counter() - t0
            cache.CACHE.clear()
            cache.CACHE.version = -1
            _say(
                console,
                f"  seeded a tenant with {sizes.big_resources:,} resources in "
                f"{res.big_seed_seconds:.1f} s; list pages again",
            )
            res.pages += bench_pages(db, pp, wp, big, f"{sizes.big_resources:,} resources", sizes, True)
            res.pages += bench_pages(
                db, pp, wp, small, f"{sizes.small_resources:,} resources (after the big load)", sizes, False
            )
            _say(console, "  grant changes")
            res.flips = bench_flips(db, backend.owner_url, pol, principals, sizes)
        finally:
            db.dispose()
            cache.CACHE.clear()
            cache.CACHE.version = -1
    return res


# --------------------------------------------------------------------------- output


def _mark(ok: bool) -> str:
    return "[green]✔ pass[/green]" if ok else "[red]✘ miss[/red]"


def _casbin_best(res: CheckResults) -> tuple[CasbinVariant, float]:
    return max(res.casbin, key=lambda vr: vr[1])


def _print_backend(res: BackendResults, sizes: Sizes, console: Console) -> None:
    c = res.check
    t = Table(
        title=f"{res.name}: decisions/s on a warm cache — random stream of {c.stream:,} "
        f"(user, tenant, permission) over {c.users:,} users of {sizes.users:,}, {sizes.tenants:,} tenants",
        title_justify="left",
    )
    for col in ("decider", "decisions/s", "µs/decision", "check() ÷ this", "rules", "load s"):
        t.add_column(col, justify="left" if col == "decider" else "right")
    rows: list[tuple[str, float, str, str]] = [
        ("tenantry check(), one session", c.check_rate, "", ""),
        ("tenantry check(), a transaction per 10 decisions", c.check_fresh_rate, "", ""),
    ]
    if c.bare_rate:
        rows.append(("bare dict[(user, tenant)] → frozenset", c.bare_rate, "", ""))
    rows += [(v.label, r, f"{v.rules:,}", f"{v.load_seconds:.1f}") for v, r in c.casbin]
    rows.append((f"tenantry check(), cold cache ({c.cold_pairs:,} pairs)", c.cold_rate, "", ""))
    for label, rate, rules, load in rows:
        t.add_row(
            label,
            f"{rate:,.0f}",
            f"{1e6 / rate:,.2f}" if rate else "—",
            f"{c.check_rate / rate:,.2f}x" if rate else "—",
            rules,
            load,
        )
    console.print(t)
    console.print(
        "[dim]In-process deciders: decisions per CPU second of this process, median of 5 rounds interleaved "
        "between deciders. The transaction and cold rows: wall clock (they wait on the database).[/dim]"
    )
    if not c.casbin:
        console.print(
            "[dim]A warm decision never reads the database: the race against the bare table and casbin ran "
            "on the first backend; here only the cold fill and the per-transaction version read are "
            "measured, on a sample of users.[/dim]"
        )
    who = "engine, bare table and every casbin variant" if c.casbin else "engine and bare table"
    console.print(
        f"[dim]{c.agree:,} sampled decisions: {who} agree[/dim]"
        if not c.disagree
        else f"[red]{c.disagree:,} of {c.agree + c.disagree:,} sampled decisions: {who} disagree[/red]"
    )

    t = Table(
        title=f"{res.name}: visible_filter list page — select(Resource.id).where(tenant, visible_filter("
        f"{PAGE_PERM!r})).order_by(id).limit({PAGE_SIZE}); a transaction per page",
        title_justify="left",
    )
    small_label = f"÷ {sizes.small_resources:,} p50"
    for col in ("tenant, principal", "pages", "p50 ms", "p90 ms", "p99 ms", "SQL p50 ms", small_label):
        t.add_column(col, justify="left" if col.startswith("tenant") else "right")
    base: dict[str, PageResult] = {}
    for p in res.pages:  # the first measurement of the small tenant, before the big one was loaded
        if p.resources == sizes.small_resources:
            base.setdefault(p.label.rsplit(", ", 1)[1], p)
    for p in res.pages:
        b = base.get(p.label.rsplit(", ", 1)[1])
        p50 = statistics.median(p.total_ms)
        ge = "≥ " if p.capped else ""
        t.add_row(
            p.label,
            f"{len(p.total_ms):,}" + (" (cancelled)" if p.capped else ""),
            f"{ge}{p50:.2f}",
            f"{ge}{_pct(p.total_ms, 90):.2f}",
            f"{ge}{_pct(p.total_ms, 99):.2f}",
            f"{ge}{statistics.median(p.sql_ms):.2f}",
            f"{ge}{p50 / statistics.median(b.total_ms):.2f}x" if b else "—",
        )
    console.print(t)
    console.print(
        f"[dim]The resource-grants user holds `viewer` on {PAGE_ROOTS} resources spread evenly over the id "
        f"range, each with 2 children ({PAGE_ROOTS * 3} visible); the tenant-wide user's filter is TRUE. "
        "p50 includes visible_filter() itself (its queries) and the transaction.[/dim]"
    )
    for p in res.pages:
        if p.plan and p.resources == sizes.big_resources:
            console.print(f"[dim]plan, {p.label}:\n{p.plan}[/dim]")

    if res.cache_users:
        t = Table(title=f"{res.name}: permission cache after warming", title_justify="left")
        for col in (
            "users",
            "(principal, tenant) pairs",
            "entries",
            "distinct permission sets",
            "MB (getsizeof walk)",
            "MB (tracemalloc)",
            "bytes/pair",
        ):
            t.add_column(col, justify="right")
        t.add_row(
            f"{res.cache_users:,}",
            f"{res.cache_pairs:,}",
            f"{res.cache_entries:,}",
            f"{res.distinct_sets:,}",
            f"{res.memory_walk_mb:.1f}",
            f"{res.memory_traced_mb:.1f}",
            f"{res.memory_walk_mb * 1e6 / max(1, res.cache_pairs):,.0f}",
        )
        console.print(t)
        console.print(
            "[dim]getsizeof walk: everything reachable from the cache once (the catalog's permission strings "
            "excluded: they exist anyway); tracemalloc: bytes allocated to rebuild the same structure.[/dim]"
        )
    else:
        console.print("[dim]cache memory: measured on the first backend (the same Python objects)[/dim]")

    t = Table(title=f"{res.name}: grant change → next decision (a new transaction)", title_justify="left")
    for col in (
        "path",
        "flips",
        "decision flipped",
        "write txn p50 ms",
        "next check p50 ms",
        "next check max ms",
        "total p50 ms",
    ):
        t.add_column(col, justify="left" if col == "path" else "right")
    for f in res.flips:
        totals = [a + b for a, b in zip(f.write_ms, f.next_ms, strict=True)]
        t.add_row(
            f.label,
            f"{f.tries}",
            ("[green]" if f.flipped == f.tries else "[red]") + f"{f.flipped}/{f.tries}[/]",
            f"{statistics.median(f.write_ms):.2f}",
            f"{statistics.median(f.next_ms):.2f}",
            f"{max(f.next_ms):.2f}",
            f"{statistics.median(totals):.2f}",
        )
    console.print(t)
    for note in res.notes:
        console.print(f"[yellow]{note}[/yellow]")


def _race_targets(t: Table, res: BackendResults) -> None:
    c = res.check
    best, best_rate = _casbin_best(c)
    ratio = c.check_rate / best_rate
    t.add_row(
        res.name,
        f"check() {c.check_rate:,.0f}/s ÷ casbin fastest {best_rate:,.0f}/s "
        f"({best.label.removeprefix('casbin ')})",
        f"{ratio:,.1f}x",
        f"≥ {CHECK_TARGET:.0f}x",
        _mark(ratio >= CHECK_TARGET),
    )
    slow = c.bare_rate / c.check_rate
    t.add_row(
        res.name,
        f"bare frozenset {c.bare_rate:,.0f}/s ÷ check() {c.check_rate:,.0f}/s",
        f"{slow:.2f}x",
        f"≤ {BARE_TARGET:.0f}x",
        _mark(slow <= BARE_TARGET),
    )


def _targets(results: list[BackendResults], sizes: Sizes, console: Console) -> None:
    t = Table(title="Targets (authz)", title_justify="left")
    for col in ("backend", "measure", "value", "target", "result"):
        t.add_column(col, justify="right" if col in ("value", "target") else "left")
    for res in results:
        c = res.check
        if not c.casbin:
            t.add_row(res.name, "warm check(): no database access, raced on the first backend", "", "", "")
        else:
            _race_targets(t, res)
        t.add_row(
            res.name,
            ("engine, bare table and casbin" if c.casbin else "engine and bare table")
            + " agree on sampled decisions",
            f"{c.agree:,}/{c.agree + c.disagree:,}",
            "all",
            _mark(c.disagree == 0),
        )
        pages = {p.label: p for p in res.pages}
        small = pages.get(f"{sizes.small_resources:,} resources, resource grants only")
        big = pages.get(f"{sizes.big_resources:,} resources, resource grants only")
        if small and big:
            a, b = statistics.median(big.total_ms), statistics.median(small.total_ms)
            ge = "≥ " if big.capped else ""
            t.add_row(
                res.name,
                f"page p50, resource grants: {sizes.big_resources:,} rows {ge}{a:.2f} ms ÷ "
                f"{sizes.small_resources:,} rows {b:.2f} ms"
                + (" (cancelled at the cap)" if big.capped else ""),
                f"{ge}{a / b:.2f}x",
                f"≤ {PAGE_TARGET}x",
                _mark(a / b <= PAGE_TARGET),
            )
        if res.cache_users:
            t.add_row(
                res.name,
                f"permission cache, {res.cache_users:,} users ({res.cache_pairs:,} pairs)",
                f"{res.memory_walk_mb:.1f} MB",
                "(report)",
                "",
            )
        for f in res.flips:
            totals = [a + b for a, b in zip(f.write_ms, f.next_ms, strict=True)]
            t.add_row(
                res.name,
                f"grant change visible: {f.label}",
                f"{statistics.median(totals):.1f} ms",
                "next decision",
                _mark(f.flipped == f.tries),
            )
    console.print(t)
    if sizes.tenants < 1_000:
        console.print(
            f"[yellow]--quick: {sizes.users:,} users over {sizes.tenants:,} tenants and "
            f"{sizes.big_resources:,} resources in the big tenant (full run: 20,000 / 1,000 / 1,000,000); "
            "the textbook casbin configuration is skipped.[/yellow]"
        )


def main(quick: bool = False) -> None:
    global _T0
    _T0 = time.monotonic()
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=150)
    sizes = Sizes.for_quick(quick)
    try:
        import casbin  # noqa: F401
    except ImportError:
        console.print("[red]pycasbin is missing: pip install -e '.[test,bench]' (make bench does)[/red]")
        raise
    names = ["sqlite"] + (["postgres"] if _postgres_admin_url() else [])
    if len(names) == 1:
        console.print(
            "[dim]PostgreSQL skipped: set TENANTRY_BENCH_POSTGRES_URL or TENANTRY_TEST_POSTGRES_URL "
            "(e.g. postgresql://root@127.0.0.1:5432/postgres)[/dim]"
        )
    try:
        from bench._harness import background_cpu

        busy = background_cpu()
    except Exception:  # the harness is optional here
        busy = None
    if busy is not None and busy > 20:
        console.print(
            f"[yellow]the machine was {busy:.0f}% busy (of one core) before the run: other processes compete "
            "with the benchmark; absolute numbers are noisy (ratios less so: rounds are interleaved)[/yellow]"
        )
    results = []
    casbin_done: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tenantry-bench-authz-") as tmp:
        for name in names:
            res = bench_backend(name, Path(tmp), sizes, casbin_done, console)
            _print_backend(res, sizes, console)
            results.append(res)
    _targets(results, sizes, console)


def run(options: Options) -> None:
    main(options.quick)
