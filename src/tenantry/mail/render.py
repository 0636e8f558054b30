"""Render mail templates in a sandboxed Jinja2 environment, with the tenant's branding."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment

TEMPLATES = Path(__file__).parent / "templates"
# Controls and Unicode line breaks: none of them belongs in a one-line header.
_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


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


@lru_cache(maxsize=1)
def _env() -> ImmutableSandboxedEnvironment:
    # Security: sandboxed (no attribute access to internals), immutable, strict about unknown names.
    return ImmutableSandboxedEnvironment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
    )


def render(kind: str, context: dict[str, Any], *, language: str = "en") -> Rendered:
    env = _env()
    lang = language if (TEMPLATES / language / f"{kind}.txt").exists() else "en"
    ctx = {"product": "Tenantry", "brand_color": "#2f6fde", **context}
    subject = header_safe(env.get_template(f"{lang}/{kind}.subject").render(ctx))
    text = env.get_template(f"{lang}/{kind}.txt").render(ctx)
    html_path = TEMPLATES / lang / f"{kind}.html"
    html = env.get_template(f"{lang}/{kind}.html").render(ctx) if html_path.exists() else None
    return Rendered(subject, text, html)


def render_string(source: str, context: dict[str, Any]) -> str:
    """Render an untrusted template string (e.g. a tenant's own) in the same sandbox."""
    return _env().from_string(source).render(context)
