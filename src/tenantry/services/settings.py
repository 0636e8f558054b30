"""Settings: system values and tenant overrides of the catalog, merged at read time (DESIGN §1).

Two halves. The building blocks (`effective`, `user_security`) are what other services read —
sign-in, sessions, password rules, impersonation, the purge job, mails — without authorizing:
they answer "what applies here", not "who may see it". The public functions (`get_*`,
`update_*`, `reset_*`) serve the API and authorize themselves.

Caching: merged values are kept per process and tagged with `authz_state.settings_version`
and `authz_state.version` (memberships decide whose tenants' rules apply to a user). Every
settings change bumps the settings version in its own transaction; each transaction compares
the database's versions with the cache's (one primary-key read, or none when authentication
already read them in its query, see `version_columns`), so every instance sees a change on its
next request, as with permissions (authz/cache.py); with Redis, a bump is also published so
idle instances clear at once.

Which values apply to a user who belongs to several tenants (session lifetimes, password
length, 2FA, impersonation): the strictest of their tenants' merged values (`_strictest`,
the one place of that rule); an account in no tenant gets the system values.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import ScalarSelect, delete, event, select, update
from sqlalchemy.orm import Session, SessionTransaction

from tenantry.authz import Perm
from tenantry.authz import cache as authz_cache
from tenantry.config import Settings
from tenantry.db import core, scoping
from tenantry.db import session as db_session
from tenantry.db.tables import AuthzState, SystemSetting, Tenant, TenantSetting, User
from tenantry.errors import Invalid, NotFound, PermissionDenied
from tenantry.services import audit
from tenantry.services.context import ServiceContext
from tenantry.services.settings_catalog import (
    CATEGORIES,
    TENANT_CATEGORIES,
    BrandingSettings,
    Category,
    DefaultsSettings,
    GeneralSettings,
    MailSettings,
    NotificationSettings,
    SecuritySettings,
    TrashSettings,
    deployment_defaults,
)

log = logging.getLogger("tenantry.services.settings")
Source = Literal["default", "system", "tenant"]
_VERSIONS = "settings_versions"  # session.info: (authz version, settings version) of this transaction
_DIRTY = "settings_changed"  # session.info: this transaction changed settings; read, never cache


@dataclass(frozen=True)
class EffectiveSettings:
    """Every category's values as they apply (system values, with the tenant's overrides)."""

    general: GeneralSettings
    security: SecuritySettings
    notifications: NotificationSettings
    branding: BrandingSettings
    trash: TrashSettings
    mail: MailSettings
    defaults: DefaultsSettings
    # (category, key) → where the value comes from: the catalog/deployment default, a system
    # value set at run time, or the tenant's override.
    sources: dict[tuple[str, str], Source] = field(default_factory=dict)

    def category(self, name: str) -> Category:
        value: Category = getattr(self, name)
        return value

    def source(self, category: str, key: str) -> Source:
        return self.sources.get((category, key), "default")


# --- the cache -------------------------------------------------------------------------------------


class _Cache:
    def __init__(self, maxsize: int = 10_000) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[Any, tuple[Settings, tuple[int, int], Any]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, deployment: Settings, versions: tuple[int, int]) -> Any:
        entry = self._data.get(key)
        # The deployment object is held by the entry, so `is` cannot match a recycled id.
        if entry is None or entry[0] is not deployment or entry[1] != versions:
            return None
        return entry[2]

    def put(self, key: Any, deployment: Settings, versions: tuple[int, int], value: Any) -> None:
        with self._lock:
            self._data[key] = (deployment, versions, value)
            self._data.move_to_end(key)
            if len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


CACHE = _Cache()
authz_cache.on_settings_bump(CACHE.clear)  # other instances' changes (Redis), when configured


def version_columns() -> tuple[ScalarSelect[int], ScalarSelect[int]]:
    """The versions as columns of a transaction's first query (authentication): `prime` takes them."""
    return (
        select(AuthzState.version).where(AuthzState.id == 1).scalar_subquery(),
        select(AuthzState.settings_version).where(AuthzState.id == 1).scalar_subquery(),
    )


def prime(session: Session, authz_version: int | None, settings_version: int | None) -> None:
    if _VERSIONS not in session.info:
        session.info[_VERSIONS] = (authz_version or 0, settings_version or 0)


def _versions(session: Session) -> tuple[int, int] | None:
    """This transaction's versions (read once); None when it changed settings itself."""
    if session.info.get(_DIRTY):
        return None
    versions = session.info.get(_VERSIONS)
    if versions is None:
        row = session.execute(
            select(AuthzState.version, AuthzState.settings_version).where(AuthzState.id == 1)
        ).first()
        versions = (row[0], row[1]) if row is not None else (0, 0)
        session.info[_VERSIONS] = versions
    return versions


def bump(session: Session) -> None:
    """Record a settings change in the caller's transaction; every instance re-reads after commit."""
    done = session.execute(
        update(AuthzState).where(AuthzState.id == 1).values(settings_version=AuthzState.settings_version + 1)
    ).rowcount  # type: ignore[attr-defined]
    if not done:
        session.add(AuthzState(id=1, version=0, settings_version=1))
        session.flush()
    session.info[_DIRTY] = True

    def _after() -> None:
        CACHE.clear()
        authz_cache.publish_settings_bump()

    db_session.after_commit(session, _after)


@event.listens_for(Session, "after_transaction_end")
def _forget_transaction_state(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested or transaction.parent is not None:
        return
    session.info.pop(_VERSIONS, None)
    session.info.pop(_DIRTY, None)


# --- merging ---------------------------------------------------------------------------------------


def _merge(
    base: dict[str, dict[str, Any]],
    rows: list[tuple[str, str, Any]],
    source: Source,
    sources: dict[tuple[str, str], Source],
    *,
    tenant: bool = False,
) -> None:
    """Lay stored values over `base`; a value the catalog no longer accepts is skipped (logged)."""
    for category, key, value in rows:
        cls = CATEGORIES.get(category)
        if cls is None or key not in cls.model_fields or (tenant and not cls.overridable(key)):
            continue
        try:
            cls.model_validate({**base[category], key: value})
        except ValidationError:
            log.warning("ignoring a stored setting the catalog refuses", extra={"fields": {"key": key}})
            continue
        base[category][key] = value
        sources[(category, key)] = source


def _build(values: dict[str, dict[str, Any]], sources: dict[tuple[str, str], Source]) -> EffectiveSettings:
    models = {name: cls.model_validate(values[name]) for name, cls in CATEGORIES.items()}
    return EffectiveSettings(sources=sources, **models)  # type: ignore[arg-type]


def _system(session: Session, deployment: Settings, versions: tuple[int, int] | None) -> EffectiveSettings:
    if versions is not None:
        hit = CACHE.get(("system",), deployment, versions)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
    values = deployment_defaults(deployment)
    sources: dict[tuple[str, str], Source] = {}
    rows = [(r.category, r.key, r.value) for r in session.scalars(select(SystemSetting))]
    _merge(values, rows, "system", sources)
    result = _build(values, sources)
    if versions is not None:
        CACHE.put(("system",), deployment, versions, result)
    return result


def _tenants(
    session: Session, deployment: Settings, tenant_ids: list[uuid.UUID]
) -> dict[uuid.UUID, EffectiveSettings]:
    versions = _versions(session)
    system = _system(session, deployment, versions)
    out: dict[uuid.UUID, EffectiveSettings] = {}
    missing = []
    for tid in tenant_ids:
        hit = CACHE.get(("tenant", tid), deployment, versions) if versions is not None else None
        if hit is None:
            missing.append(tid)
        else:
            out[tid] = hit
    if not missing:
        return out
    rows: dict[uuid.UUID, list[tuple[str, str, Any]]] = {tid: [] for tid in missing}
    with scoping.cross_tenant(session):  # Security: building block; callers decided whose values
        for r in session.execute(
            select(
                TenantSetting.tenant_id, TenantSetting.category, TenantSetting.key, TenantSetting.value
            ).where(TenantSetting.tenant_id.in_(missing))
        ):
            rows[r.tenant_id].append((r.category, r.key, r.value))
        for r in session.execute(
            select(Tenant.id, Tenant.branding_color, Tenant.branding_logo_url)
            .where(Tenant.id.in_(missing))
            .execution_options(include_deleted=True)
        ):
            # The tenant's own branding columns are its `branding` overrides (one source of truth).
            if r.branding_color is not None:
                rows[r.id].append(("branding", "color", r.branding_color))
            if r.branding_logo_url is not None:
                rows[r.id].append(("branding", "logo_url", r.branding_logo_url))
    for tid in missing:
        values = {name: system.category(name).model_dump() for name in CATEGORIES}
        sources = dict(system.sources)
        _merge(values, rows[tid], "tenant", sources, tenant=True)
        out[tid] = result = _build(values, sources)
        if versions is not None:
            CACHE.put(("tenant", tid), deployment, versions, result)
    return out


def effective(session: Session, deployment: Settings, tenant_id: uuid.UUID | None) -> EffectiveSettings:
    """Building block: the values that apply in a tenant (its overrides over the system values),
    or the system values for `tenant_id=None`. Cached; no authorization (callers decide).

    Mails read sender name and reply-to (`.notifications`), colour and logo (`.branding`) and
    the default language (`.general.default_language`) of the tenant they are sent for.
    """
    if tenant_id is None:
        return _system(session, deployment, _versions(session))
    return _tenants(session, deployment, [tenant_id])[tenant_id]


def _strictest(policies: list[SecuritySettings]) -> SecuritySettings:
    """THE rule for a user in several tenants: each security value at its strictest."""
    first = policies[0]
    if len(policies) == 1:
        return first
    return first.model_copy(
        update={
            "require_2fa": any(p.require_2fa for p in policies),
            "session_idle_minutes": min(p.session_idle_minutes for p in policies),
            "session_absolute_minutes": min(p.session_absolute_minutes for p in policies),
            "password_min_length": max(p.password_min_length for p in policies),
            "password_min_length_with_2fa": max(p.password_min_length_with_2fa for p in policies),
            "impersonation_allowed": all(p.impersonation_allowed for p in policies),
            "impersonation_notice_mail": any(p.impersonation_notice_mail for p in policies),
            "impersonation_max_minutes": min(p.impersonation_max_minutes for p in policies),
        }
    )


def user_security(session: Session, deployment: Settings, user: User) -> SecuritySettings:
    """Building block: the security values that apply to an account (an alias: where it works,
    its parent's tenants): the strictest of its tenants', the system values in none."""
    member = user.parent_id or user.id
    versions = _versions(session)
    if versions is not None:
        hit = CACHE.get(("user", member), deployment, versions)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
    m = core.memberships
    with scoping.cross_tenant(session):
        tenant_ids = list(
            session.scalars(
                select(m.c.tenant_id).where(m.c.user_id == member, core.live(m)).order_by(m.c.tenant_id)
            )
        )
    if tenant_ids:
        result = _strictest([s.security for s in _tenants(session, deployment, tenant_ids).values()])
    else:
        result = effective(session, deployment, None).security
    if versions is not None:
        CACHE.put(("user", member), deployment, versions, result)
    return result


# --- views for the API -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingView:
    value: Any
    source: Source
    tenant_overridable: bool


CategoryView = dict[str, SettingView]


def _view(values: EffectiveSettings, names: tuple[str, ...], *, tenant: bool) -> dict[str, CategoryView]:
    """In a tenant's view a system value is its default: the source is `default` or `tenant`."""
    out: dict[str, CategoryView] = {}
    for name in names:
        cls = CATEGORIES[name]
        data = values.category(name).model_dump(mode="json")
        view: CategoryView = {}
        for key in cls.model_fields:
            source = values.source(name, key)
            if tenant and source == "system":
                source = "default"
            view[key] = SettingView(data[key], source, cls.overridable(key))
        out[name] = view
    return out


def _category(name: str) -> type[Category]:
    cls = CATEGORIES.get(name)
    if cls is None:
        raise Invalid(f"unknown settings category {name!r}", code="unknown_setting", field=name)
    return cls


def _tenant_category(name: str) -> type[Category]:
    cls = _category(name)
    if cls.system_only:
        raise NotFound("settings category")  # Security: invisible to tenants (DESIGN §2)
    return cls


def _validated(
    cls: type[Category], category: str, current: dict[str, Any], changes: dict[str, Any]
) -> Category:
    """`current` with `changes`, validated; a bad key or value is named (422)."""
    for key, value in changes.items():
        if key not in cls.model_fields:
            raise Invalid(
                f"unknown setting {category}.{key}", code="unknown_setting", field=f"{category}.{key}"
            )
        if isinstance(value, str) and any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise Invalid(
                f"{category}.{key}: control characters are not allowed",
                code="invalid_setting",
                field=f"{category}.{key}",
            )
    try:
        return cls.model_validate({**current, **changes}, strict=True)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else next(iter(changes), "")
        raise Invalid(
            f"{category}.{key}: {err['msg']}", code="invalid_setting", field=f"{category}.{key}"
        ) from None


def get_system_settings(ctx: ServiceContext) -> dict[str, CategoryView]:
    """Every category's system value (superadmins): what applies where no tenant overrides."""
    ctx.require(Perm.SETTINGS_READ, global_scope=True)
    return _view(effective(ctx.session, ctx.settings, None), tuple(CATEGORIES), tenant=False)


def get_system_category(ctx: ServiceContext, category: str) -> CategoryView:
    ctx.require(Perm.SETTINGS_READ, global_scope=True)
    _category(category)
    return _view(effective(ctx.session, ctx.settings, None), (category,), tenant=False)[category]


def update_system_settings(ctx: ServiceContext, category: str, changes: dict[str, Any]) -> CategoryView:
    """Partial: only the keys given change. Takes effect everywhere on the next request."""
    ctx.require(Perm.SYSTEM_SETTINGS_UPDATE, global_scope=True)
    cls = _category(category)
    before = effective(ctx.session, ctx.settings, None).category(category).model_dump(mode="json")
    new = _validated(cls, category, before, changes).model_dump(mode="json")
    b, a = audit.diff(before, new)
    if a:
        for key, value in a.items():
            row = ctx.session.get(SystemSetting, (category, key))
            if row is None:
                ctx.session.add(SystemSetting(category=category, key=key, value=value))
            else:
                row.value = value
        ctx.session.flush()
        bump(ctx.session)
        audit.record(
            ctx,
            "settings.system_update",
            target_type="settings",
            target_id=category,
            before=b,
            after=a,
            tenant_id=None,
        )
    return _view(effective(ctx.session, ctx.settings, None), (category,), tenant=False)[category]


def get_tenant_settings(ctx: ServiceContext, tenant: Tenant) -> dict[str, CategoryView]:
    """The merged view of the tenant-visible categories, with each key's source."""
    ctx.require(Perm.SETTINGS_READ, tenant_id=tenant.id)
    return _view(effective(ctx.session, ctx.settings, tenant.id), TENANT_CATEGORIES, tenant=True)


def get_tenant_category(ctx: ServiceContext, tenant: Tenant, category: str) -> CategoryView:
    ctx.require(Perm.SETTINGS_READ, tenant_id=tenant.id)
    _tenant_category(category)
    return _view(effective(ctx.session, ctx.settings, tenant.id), (category,), tenant=True)[category]


def _overrides(ctx: ServiceContext, tenant: Tenant, category: str) -> dict[str, Any]:
    if category == "branding":
        values = {"color": tenant.branding_color, "logo_url": tenant.branding_logo_url}
        return {k: v for k, v in values.items() if v is not None}
    with scoping.in_tenant(ctx.session, tenant.id):
        rows = ctx.session.execute(
            select(TenantSetting.key, TenantSetting.value).where(
                TenantSetting.tenant_id == tenant.id, TenantSetting.category == category
            )
        )
        return {r.key: r.value for r in rows}


def _store_overrides(ctx: ServiceContext, tenant: Tenant, category: str, values: dict[str, Any]) -> None:
    """Write the tenant's overrides of one category (None: no override, back to the default)."""
    if category == "branding":
        for key, value in values.items():
            setattr(tenant, f"branding_{key}", value.lower() if key == "color" and value else value)
        ctx.session.flush()
        return
    with scoping.in_tenant(ctx.session, tenant.id):
        for key, value in values.items():
            ctx.session.execute(
                delete(TenantSetting).where(
                    TenantSetting.tenant_id == tenant.id,
                    TenantSetting.category == category,
                    TenantSetting.key == key,
                )
            )
            if value is not None:
                ctx.session.add(TenantSetting(tenant_id=tenant.id, category=category, key=key, value=value))
        ctx.session.flush()


def _change_tenant(
    ctx: ServiceContext, tenant: Tenant, category: str, changes: dict[str, Any], action: str
) -> CategoryView:
    cls = _tenant_category(category)
    for key in changes:
        if key in cls.model_fields and not cls.overridable(key):
            raise PermissionDenied(
                f"{category}.{key} is a system setting; tenants cannot override it",
                code="setting_not_overridable",
                field=f"{category}.{key}",
            )
    merged = effective(ctx.session, ctx.settings, tenant.id)
    current = merged.category(category).model_dump(mode="json")
    system = effective(ctx.session, ctx.settings, None).category(category).model_dump(mode="json")
    # A null resets the key to the system value; the rest is validated over the merged values.
    resolved = {k: (system.get(k) if v is None else v) for k, v in changes.items()}
    new = _validated(cls, category, current, resolved).model_dump(mode="json")
    before = _overrides(ctx, tenant, category)
    after = dict(before)
    for key, value in changes.items():
        if value is None:
            after.pop(key, None)
        else:
            after[key] = new[key]
    if after != before:
        _store_overrides(ctx, tenant, category, {k: after.get(k) for k in changes})
        bump(ctx.session)
        b, a = audit.diff(before, after)
        b |= {k: before.get(k) for k in before.keys() - after.keys()}
        a |= {k: None for k in before.keys() - after.keys()}
        audit.record(
            ctx,
            action,
            target_type="settings",
            target_id=category,
            before=b,
            after=a,
            tenant_id=tenant.id,
        )
    return _view(effective(ctx.session, ctx.settings, tenant.id), (category,), tenant=True)[category]


def update_tenant_settings(
    ctx: ServiceContext, tenant: Tenant, category: str, changes: dict[str, Any]
) -> CategoryView:
    """Store overrides for the keys given (partial); a null value resets that key."""
    ctx.require(Perm.SETTINGS_UPDATE, tenant_id=tenant.id)
    return _change_tenant(ctx, tenant, category, changes, "settings.update")


def reset_tenant_setting(ctx: ServiceContext, tenant: Tenant, category: str, key: str) -> CategoryView:
    """Back to the system value for one key."""
    ctx.require(Perm.SETTINGS_UPDATE, tenant_id=tenant.id)
    cls = _tenant_category(category)
    if key not in cls.model_fields:
        raise Invalid(f"unknown setting {category}.{key}", code="unknown_setting", field=f"{category}.{key}")
    return _change_tenant(ctx, tenant, category, {key: None}, "settings.reset")


def apply_new_tenant_defaults(ctx: ServiceContext, tenant: Tenant) -> None:
    """A new tenant starts with the `defaults` category's choices as its overrides."""
    defaults = effective(ctx.session, ctx.settings, None).defaults
    values: list[tuple[str, str, Any]] = []
    if defaults.require_2fa:
        values.append(("security", "require_2fa", True))
    if defaults.default_language is not None:
        values.append(("general", "default_language", defaults.default_language))
    if not values:
        return
    with scoping.in_tenant(ctx.session, tenant.id):
        for category, key, value in values:
            ctx.session.add(TenantSetting(tenant_id=tenant.id, category=category, key=key, value=value))
        ctx.session.flush()
    bump(ctx.session)
