"""Email templates: system templates and a tenant's clones (issue 11)."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, Field

from tenantry.api.schemas import MultiLine, SingleLine, Strict
from tenantry.mail.render import MAX_BODY, MAX_SUBJECT, Rendered
from tenantry.services.email_templates import TemplateView


class EmailTemplateOut(BaseModel):
    key: str
    language: str
    subject: str
    text: str
    html: str
    variables: list[str]
    source: Literal["system", "tenant"]
    id: uuid.UUID | None = None
    version: int | None = None

    @classmethod
    def of(cls, v: TemplateView) -> EmailTemplateOut:
        return cls(
            key=v.key,
            language=v.language,
            subject=v.subject,
            text=v.text,
            html=v.html,
            variables=v.variables,
            source=v.source,
            id=v.id,
            version=v.version,
        )


class EmailTemplateCreate(Strict):
    key: SingleLine = Field(max_length=40)
    language: SingleLine = Field(max_length=8)


class EmailTemplateUpdate(Strict):
    subject: SingleLine = Field(min_length=1, max_length=MAX_SUBJECT)
    text: MultiLine = Field(min_length=1, max_length=MAX_BODY)
    html: MultiLine = Field(min_length=1, max_length=MAX_BODY)


class EmailTemplatePreviewIn(Strict):
    """An unsaved draft to preview instead of the stored template (all three parts, or none)."""

    subject: SingleLine | None = Field(default=None, max_length=MAX_SUBJECT)
    text: MultiLine | None = Field(default=None, max_length=MAX_BODY)
    html: MultiLine | None = Field(default=None, max_length=MAX_BODY)


class EmailPreviewOut(BaseModel):
    subject: str
    text: str
    html: str | None

    @classmethod
    def of(cls, r: Rendered) -> EmailPreviewOut:
        return cls(subject=r.subject, text=r.text, html=r.html)
