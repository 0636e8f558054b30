"""Render mail templates in a sandboxed Jinja2 environment, with the tenant's branding."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment

TEMPLATES = Path(__file__).parent / "templates"


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
    subject = env.get_template(f"{lang}/{kind}.subject").render(ctx).strip()
    text = env.get_template(f"{lang}/{kind}.txt").render(ctx)
    html_path = TEMPLATES / lang / f"{kind}.html"
    html = env.get_template(f"{lang}/{kind}.html").render(ctx) if html_path.exists() else None
    return Rendered(subject, text, html)


def render_string(source: str, context: dict[str, Any]) -> str:
    """Render an untrusted template string (e.g. a tenant's own) in the same sandbox."""
    return _env().from_string(source).render(context)
