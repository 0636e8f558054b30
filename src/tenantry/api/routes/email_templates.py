"""`/api/v1/email-templates` (system, read-only) and `/api/v1/tenants/{tenant}/email-templates`."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Header, Response

from tenantry.api.deps import CtxDep, TenantCtxDep
from tenantry.api.etags import etag, parse_if_match
from tenantry.api.routing import ApiRoute
from tenantry.api.schemas.email_templates import (
    EmailPreviewOut,
    EmailTemplateCreate,
    EmailTemplateOut,
    EmailTemplatePreviewIn,
    EmailTemplateUpdate,
)
from tenantry.errors import Invalid
from tenantry.mail.render import TemplateSource
from tenantry.services import email_templates

router = APIRouter(tags=["email templates"], route_class=ApiRoute)
SYSTEM = "/api/v1/email-templates"
TENANT = "/api/v1/tenants/{tenant}/email-templates"


@router.get(SYSTEM, response_model=list[EmailTemplateOut])
def list_system_templates(ctx: CtxDep) -> list[EmailTemplateOut]:
    return [EmailTemplateOut.of(v) for v in email_templates.list_system_templates(ctx)]


@router.get(SYSTEM + "/{key}/{language}", response_model=EmailTemplateOut)
def get_system_template(ctx: CtxDep, key: str, language: str) -> EmailTemplateOut:
    return EmailTemplateOut.of(email_templates.get_system_template(ctx, key=key, language=language))


@router.post(SYSTEM + "/{key}/{language}/preview", response_model=EmailPreviewOut)
def preview_system_template(ctx: CtxDep, key: str, language: str) -> EmailPreviewOut:
    return EmailPreviewOut.of(email_templates.preview_system_template(ctx, key=key, language=language))


@router.get(TENANT, response_model=list[EmailTemplateOut])
def list_templates(ctx: TenantCtxDep) -> list[EmailTemplateOut]:
    return [EmailTemplateOut.of(v) for v in email_templates.list_templates(ctx)]


@router.post(TENANT, response_model=EmailTemplateOut, status_code=201)
def create_template(ctx: TenantCtxDep, body: EmailTemplateCreate, response: Response) -> EmailTemplateOut:
    view = email_templates.create_template(ctx, key=body.key, language=body.language)
    ctx.commit()
    response.headers["ETag"] = etag(view.version or 1)
    return EmailTemplateOut.of(view)


@router.get(TENANT + "/{template_id}", response_model=EmailTemplateOut)
def get_template(ctx: TenantCtxDep, template_id: uuid.UUID, response: Response) -> EmailTemplateOut:
    view = email_templates.get_template(ctx, template_id)
    response.headers["ETag"] = etag(view.version or 1)
    return EmailTemplateOut.of(view)


@router.put(TENANT + "/{template_id}", response_model=EmailTemplateOut)
def update_template(
    ctx: TenantCtxDep,
    template_id: uuid.UUID,
    body: EmailTemplateUpdate,
    response: Response,
    if_match: str | None = Header(default=None, alias="If-Match"),
) -> EmailTemplateOut:
    view = email_templates.update_template(
        ctx,
        template_id,
        subject=body.subject,
        text=body.text,
        html=body.html,
        if_match=parse_if_match(if_match),
    )
    ctx.commit()
    response.headers["ETag"] = etag(view.version or 1)
    return EmailTemplateOut.of(view)


@router.delete(TENANT + "/{template_id}", status_code=204)
def delete_template(ctx: TenantCtxDep, template_id: uuid.UUID) -> Response:
    email_templates.delete_template(ctx, template_id)
    ctx.commit()
    return Response(status_code=204)


@router.post(TENANT + "/{template_id}/preview", response_model=EmailPreviewOut)
def preview_template(
    ctx: TenantCtxDep,
    template_id: uuid.UUID,
    body: Annotated[EmailTemplatePreviewIn, Body(default_factory=EmailTemplatePreviewIn)],
) -> EmailPreviewOut:
    """No body (or `{}`): the stored template; a draft: all three parts, previewed unsaved."""
    draft = None
    if body.model_fields_set:
        if body.subject is None or body.text is None or body.html is None:
            raise Invalid("a draft needs subject, text and html", code="incomplete_draft")
        draft = TemplateSource(body.subject, body.text, body.html)
    return EmailPreviewOut.of(email_templates.preview_template(ctx, template_id, draft=draft))
