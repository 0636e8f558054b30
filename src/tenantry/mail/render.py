"""Render mail templates in a sandboxed Jinja2 environment, with the tenant's branding.

System templates are files (`templates/<language>/<kind>.{subject,txt,html}`); a tenant may
replace them with its own (`email_templates`). Both go through one path: a syntax check that
allows only plain expressions (names from the template's short list, a few filters, `if`), then
an immutable sandbox with autoescaping for HTML. A tenant's template that fails falls back to the
system one and is logged (fail closed).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, Template, nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from tenantry.errors import Invalid
from tenantry.mail.identity import DEFAULT_COLOR, LANGUAGES, MailIdentity

TEMPLATES = Path(__file__).parent / "templates"
log = logging.getLogger("tenantry.mail")
# Controls and Unicode line breaks: none of them belongs in a one-line header.
_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")

# Every mail kind and the variables its templates may use (besides COMMON).
VARIABLES: dict[str, frozenset[str]] = {
    "invitation": frozenset({"link", "inviter", "expires_at"}),
    "membership_invitation": frozenset({"link", "inviter", "role", "expires_at"}),
    "password_reset": frozenset({"link"}),
    "lockout": frozenset({"link", "failures"}),
    "impersonation_notice": frozenset({"impersonator", "reason", "expires_at"}),
}
COMMON = frozenset({"product", "tenant_name", "sender_name", "brand_color", "logo_url"})
KINDS = tuple(sorted(VARIABLES))
# What a preview fills in.
SAMPLE: dict[str, dict[str, Any]] = {
    "invitation": {
        "link": "https://tenantry.example/invitations/accept?token=sample",
        "inviter": "Ada Admin",
        "expires_at": "2030-01-01 12:00 UTC",
    },
    "membership_invitation": {
        "link": "https://tenantry.example/login",
        "inviter": "Ada Admin",
        "role": "member",
        "expires_at": "2030-01-01 12:00 UTC",
    },
    "password_reset": {"link": "https://tenantry.example/reset-password?token=sample"},
    "lockout": {"link": "https://tenantry.example/forgot-password", "failures": 5},
    "impersonation_notice": {
        "impersonator": "support@example.com",
        "reason": "ticket 4711",
        "expires_at": "2030-01-01 12:30 UTC",
    },
}
# Security: a tenant's template is data. No loops, calls, attribute or item access, assignments,
# includes or macros: nothing that could reach Python internals, read the deployment's config, or
# run long (`{% for %}` over huge ranges). Only these node types and these size-free filters.
_NODES = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.Name,
    nodes.Const,
    nodes.If,
    nodes.CondExpr,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Compare,
    nodes.Operand,
    nodes.Concat,
    nodes.Filter,
    nodes.Test,
)
FILTERS = frozenset({"upper", "lower", "title", "capitalize", "trim", "e", "escape", "default", "d"})
TESTS = frozenset({"defined", "undefined", "none", "string", "number"})
MAX_SUBJECT = 1000
# Characters per text or HTML part. A template at both limits, every character sent as a JSON
# escape (12 bytes for a pair), still fits the default 1 MiB request body: valid input is never
# refused as too large.
MAX_BODY = 40_000


def header_safe(value: str) -> str:
    """One line of text for a mail header: every control or line break becomes one space.

    Defence in depth: names are refused with CR/LF at the API, but a header built from data
    (a tenant name, an old row) must never split into two headers or make the mail unsendable.
    """
    return " ".join(_HEADER_UNSAFE.sub(" ", value).split())


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str | None


@dataclass(frozen=True)
class TemplateSource:
    subject: str
    text: str
    html: str


def _new_env(*, autoescape: bool) -> ImmutableSandboxedEnvironment:
    # Security: sandboxed (no attribute access to internals), immutable, strict about unknown
    # names, no globals (range, lipsum, cycler, …) and only the allowed filters and tests.
    env = ImmutableSandboxedEnvironment(autoescape=autoescape, undefined=StrictUndefined)
    env.globals.clear()
    env.filters = {k: v for k, v in env.filters.items() if k in FILTERS}
    env.tests = {k: v for k, v in env.tests.items() if k in TESTS}
    return env


@lru_cache(maxsize=2)
def _env(autoescape: bool) -> ImmutableSandboxedEnvironment:
    return _new_env(autoescape=autoescape)


def _reject(detail: str, code: str, part: str, **extra: Any) -> Invalid:
    return Invalid(detail, code=code, field=part, **extra)


def check_part(kind: str, part: str, source: str) -> None:
    """Refuse (422) a template part that does not compile, uses a construct outside the allowed
    set, or names a variable the kind does not have."""
    limit = MAX_SUBJECT if part == "subject" else MAX_BODY
    if len(source) > limit:
        raise _reject(f"{part} is longer than {limit} characters", "template_too_long", part)
    env = _env(part == "html")
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        raise _reject(
            f"{part} does not compile: {exc.message} (line {exc.lineno})",
            "template_syntax_error",
            part,
            line=exc.lineno,
        ) from None
    allowed = VARIABLES[kind] | COMMON
    unknown: set[str] = set()
    for node in tree.find_all(nodes.Node):
        if not isinstance(node, _NODES):
            raise _reject(
                f"{part} uses {type(node).__name__}, which templates may not use",
                "template_not_allowed",
                part,
                construct=type(node).__name__,
            )
        if isinstance(node, nodes.Name) and (node.ctx != "load" or node.name not in allowed):
            unknown.add(node.name)
        if isinstance(node, nodes.Filter) and node.name not in FILTERS:
            raise _reject(f"{part} uses the filter {node.name!r}", "template_not_allowed", part)
        if isinstance(node, nodes.Test) and node.name not in TESTS:
            raise _reject(f"{part} uses the test {node.name!r}", "template_not_allowed", part)
    if unknown:
        raise _reject(
            f"{part} uses unknown variables: {', '.join(sorted(unknown))}",
            "unknown_template_variable",
            part,
            variables=sorted(unknown),
            allowed=sorted(allowed),
        )


def check_source(kind: str, source: TemplateSource) -> None:
    for part in ("subject", "text", "html"):
        check_part(kind, part, getattr(source, part))


def _read(language: str, name: str) -> str:
    return (TEMPLATES / language / name).read_text(encoding="utf-8")


@lru_cache(maxsize=32)
def system_source(kind: str, language: str) -> TemplateSource:
    if kind not in VARIABLES or language not in LANGUAGES:
        raise KeyError((kind, language))
    return TemplateSource(
        subject=_read(language, f"{kind}.subject").strip(),
        text=_read(language, f"{kind}.txt"),
        html=_read(language, f"{kind}.html"),
    )


@lru_cache(maxsize=256)
def _compile(source: str, html: bool) -> Template:
    return _env(html).from_string(source)


@lru_cache(maxsize=1)
def _layout() -> Template:
    return _env(True).from_string((TEMPLATES / "_layout.html").read_text(encoding="utf-8"))


def _context(context: dict[str, Any], identity: MailIdentity | None, language: str) -> dict[str, Any]:
    brand = {
        "sender_name": identity.sender_name if identity else "Tenantry",
        "brand_color": identity.color if identity else DEFAULT_COLOR,
        "logo_url": identity.logo_url if identity else None,
    }
    return {"product": "Tenantry", "tenant_name": None, **context, **brand, "language": language}


def render_source(
    kind: str,
    source: TemplateSource,
    context: dict[str, Any],
    *,
    identity: MailIdentity | None = None,
    language: str = "en",
) -> Rendered:
    """Check and render one template set; any failure is `Invalid` (422), never executed further."""
    check_source(kind, source)
    ctx = _context(context, identity, language)
    try:
        subject = header_safe(_compile(source.subject, False).render(ctx))
        text = _compile(source.text, False).render(ctx)
        body = _compile(source.html, True).render(ctx)
        # The body was rendered with autoescaping on: every variable in it is escaped already.
        html = _layout().render({**ctx, "content": Markup(body)})  # noqa: S704
    except Exception as exc:  # sandbox refusals, undefined names, filter errors: all the same
        raise Invalid(
            f"the template cannot be rendered: {type(exc).__name__}", code="template_render_failed"
        ) from None
    return Rendered(subject, text, html)


def render(
    kind: str,
    context: dict[str, Any],
    *,
    language: str = "en",
    identity: MailIdentity | None = None,
    override: TemplateSource | None = None,
    override_label: str = "",
) -> Rendered:
    """Render a mail; a tenant's `override` that fails falls back to the system template (logged)."""
    lang = language if language in LANGUAGES else "en"
    if override is not None:
        try:
            return render_source(kind, override, context, identity=identity, language=lang)
        except Invalid as exc:
            log.warning(
                "tenant email template failed; the system template was used",
                extra={
                    "fields": {
                        "template": override_label,
                        "kind": kind,
                        "language": lang,
                        "code": exc.code,
                        "error": exc.detail[:200],
                    }
                },
            )
    return render_source(kind, system_source(kind, lang), context, identity=identity, language=lang)


def render_string(source: str, context: dict[str, Any]) -> str:
    """Render an untrusted template string in the same sandbox (no checks: the sandbox alone)."""
    return _env(False).from_string(source).render(context)
