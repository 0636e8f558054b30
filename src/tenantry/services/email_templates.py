"""Email templates (issue 11): read-only system templates, and a tenant's own clones of them.

A clone is checked when saved (syntax, allowed constructs, the kind's variables) and rendered
with sample data; a broken one is refused with 422. Mail sending falls back to the system
template should a stored clone still fail (`mail/render.py`).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select

from tenantry.authz import Perm
from tenantry.db.tables import EmailTemplate
from tenantry.db.types import utcnow
from tenantry.errors import Conflict, Invalid, NotFound, PreconditionFailed
from tenantry.mail.identity import LANGUAGES, tenant_mail_identity
from tenantry.mail.render import (
    COMMON,
    KINDS,
    SAMPLE,
    VARIABLES,
    Rendered,
    TemplateSource,
    render_source,
    system_source,
)
from tenantry.services import audit
from tenantry.services.context import ServiceContext


@dataclass
class TemplateView:
    key: str
    language: str
    subject: str
    text: str
    html: str
    variables: list[str]
    source: str  # system | tenant
    id: uuid.UUID | None = None
    version: int | None = None


def _variables(key: str) -> list[str]:
    return sorted(VARIABLES[key] | COMMON)


def _system_view(key: str, language: str) -> TemplateView:
    src = system_source(key, language)
    return TemplateView(key, language, src.subject, src.text, src.html, _variables(key), "system")


def _tenant_view(row: EmailTemplate) -> TemplateView:
    return TemplateView(
        row.key,
        row.language,
        row.subject,
        row.body_text,
        row.body_html,
        _variables(row.key),
        "tenant",
        row.id,
        row.version,
    )


def _known(key: str, language: str) -> None:
    if key not in KINDS:
        raise Invalid(
            f"unknown template key {key!r}; one of {', '.join(KINDS)}",
            code="unknown_template_key",
            field="key",
        )
    if language not in LANGUAGES:
        raise Invalid(
            f"unsupported language {language!r}; one of {', '.join(LANGUAGES)}",
            code="unsupported_language",
            field="language",
        )


def _system_known(key: str, language: str) -> None:
    if key not in KINDS or language not in LANGUAGES:
        raise NotFound("email template")


# --- system templates (deployment-wide, read-only) --------------------------------------------


def list_system_templates(ctx: ServiceContext) -> list[TemplateView]:
    ctx.require(Perm.TEMPLATE_MANAGE, global_scope=True)
    return [_system_view(k, lang) for k in KINDS for lang in LANGUAGES]


def get_system_template(ctx: ServiceContext, *, key: str, language: str) -> TemplateView:
    ctx.require(Perm.TEMPLATE_MANAGE, global_scope=True)
    _system_known(key, language)
    return _system_view(key, language)


def preview_system_template(ctx: ServiceContext, *, key: str, language: str) -> Rendered:
    ctx.require(Perm.TEMPLATE_MANAGE, global_scope=True)
    _system_known(key, language)
    identity = tenant_mail_identity(ctx.session, ctx.settings, None)
    return render_source(key, system_source(key, language), SAMPLE[key], identity=identity, language=language)


# --- a tenant's templates ----------------------------------------------------------------------


def list_templates(ctx: ServiceContext) -> list[TemplateView]:
    """Every kind and language as the tenant's mail uses it: its own clone, else the system one."""
    ctx.require(Perm.TEMPLATE_MANAGE)
    own = {(r.key, r.language): r for r in ctx.session.scalars(select(EmailTemplate))}
    return [
        _tenant_view(own[(k, lang)]) if (k, lang) in own else _system_view(k, lang)
        for k in KINDS
        for lang in LANGUAGES
    ]


def _get(ctx: ServiceContext, template_id: uuid.UUID) -> EmailTemplate:
    ctx.require(Perm.TEMPLATE_MANAGE)
    row = ctx.session.scalar(select(EmailTemplate).where(EmailTemplate.id == template_id))
    if row is None:
        raise NotFound("email template")
    return row


def get_template(ctx: ServiceContext, template_id: uuid.UUID) -> TemplateView:
    return _tenant_view(_get(ctx, template_id))


def create_template(ctx: ServiceContext, *, key: str, language: str) -> TemplateView:
    """Clone the system template of `key` in `language` for this tenant (409 if it has one)."""
    ctx.require(Perm.TEMPLATE_MANAGE)
    _known(key, language)
    exists = ctx.session.scalar(
        select(EmailTemplate.id).where(EmailTemplate.key == key, EmailTemplate.language == language)
    )
    if exists is not None:
        raise Conflict(
            f"the tenant already has its own {key} template in {language}",
            code="template_exists",
            id=str(exists),
        )
    src = system_source(key, language)
    assert ctx.tenant is not None  # ctx.require above ran in a tenant
    row = EmailTemplate(
        tenant_id=ctx.tenant.id,
        key=key,
        language=language,
        subject=src.subject,
        body_text=src.text,
        body_html=src.html,
    )
    ctx.session.add(row)
    ctx.session.flush()
    audit.record(
        ctx,
        "template.create",
        target_type="email_template",
        target_id=row.id,
        after={"key": key, "language": language},
    )
    return _tenant_view(row)


def _sample_render(ctx: ServiceContext, key: str, language: str, source: TemplateSource) -> Rendered:
    identity = tenant_mail_identity(ctx.session, ctx.settings, ctx.tenant_id)
    sample = {**SAMPLE[key], "tenant_name": ctx.tenant.name if ctx.tenant else None}
    return render_source(key, source, sample, identity=identity, language=language)


def update_template(
    ctx: ServiceContext,
    template_id: uuid.UUID,
    *,
    subject: str,
    text: str,
    html: str,
    if_match: int | None = None,
) -> TemplateView:
    """Replace subject, text and HTML; refused (422) unless all three compile and render."""
    row = _get(ctx, template_id)
    if if_match is not None and if_match != row.version:
        raise PreconditionFailed("the template was changed by someone else; reload and retry")
    source = TemplateSource(subject, text, html)
    _sample_render(ctx, row.key, row.language, source)  # raises Invalid before anything is written
    before = {"subject": row.subject, "text": row.body_text, "html": row.body_html}
    row.subject, row.body_text, row.body_html = subject, text, html
    ctx.session.flush()
    b, a = audit.diff(before, {"subject": subject, "text": text, "html": html})
    if a:
        audit.record(
            ctx, "template.update", target_type="email_template", target_id=row.id, before=b, after=a
        )
    return _tenant_view(row)


def delete_template(ctx: ServiceContext, template_id: uuid.UUID) -> None:
    """The tenant's mail of this kind and language falls back to the system template."""
    row = _get(ctx, template_id)
    row.deleted_at = utcnow()
    ctx.session.flush()
    audit.record(
        ctx,
        "template.delete",
        target_type="email_template",
        target_id=row.id,
        before={"key": row.key, "language": row.language},
    )


def preview_template(
    ctx: ServiceContext, template_id: uuid.UUID, *, draft: TemplateSource | None = None
) -> Rendered:
    """Render the stored template, or an unsaved `draft` of it, with sample data and the tenant's
    branding. A template that cannot be rendered is 422 here, never a fallback."""
    row = _get(ctx, template_id)
    source = draft or TemplateSource(row.subject, row.body_text, row.body_html)
    return _sample_render(ctx, row.key, row.language, source)
