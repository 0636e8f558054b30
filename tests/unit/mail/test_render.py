"""Mail rendering: every template in en and de, the sandbox, and autoescaping of HTML parts."""

from __future__ import annotations

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from tenantry.errors import Invalid
from tenantry.mail.render import TEMPLATES, render, render_string

LINK = "https://console.example.test/path?token=abc123"
CONTEXTS = {
    "invitation": {
        "link": LINK,
        "inviter": "Ada Admin",
        "tenant_name": "Acme Corp",
        "expires_at": "2030-01-01 12:00 UTC",
    },
    "membership_invitation": {
        "link": LINK,
        "inviter": "Ada Admin",
        "tenant_name": "Acme Corp",
        "role": "viewer",
        "expires_at": "2030-01-01 12:00 UTC",
    },
    "password_reset": {"link": LINK},
    "lockout": {"link": LINK, "failures": 7},
}
# A word each language's text is sure to contain.
GREETING = {"en": "Hello", "de": "Hallo"}


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("kind", sorted(CONTEXTS))
def test_render_every_template_in_en_and_de(kind, language):
    assert (TEMPLATES / language / f"{kind}.txt").exists()
    out = render(kind, CONTEXTS[kind], language=language)
    assert out.subject and "\n" not in out.subject
    assert "{{" not in out.subject + out.text
    assert LINK in out.text
    assert out.text.startswith(GREETING[language])


def test_render_german_differs_from_english():
    en = render("password_reset", CONTEXTS["password_reset"], language="en")
    de = render("password_reset", CONTEXTS["password_reset"], language="de")
    assert en.subject != de.subject
    assert "Passwort" in de.subject
    assert "password" in en.subject


def test_render_invitation_names_inviter_and_tenant():
    out = render("invitation", CONTEXTS["invitation"], language="de")
    assert "Ada Admin" in out.text
    assert "Acme Corp" in out.subject
    assert "2030-01-01 12:00 UTC" in out.text


def test_render_invitation_without_tenant_names_the_product():
    out = render("invitation", {**CONTEXTS["invitation"], "tenant_name": None})
    assert "Tenantry" in out.subject


def test_render_lockout_mentions_failures():
    assert "7" in render("lockout", CONTEXTS["lockout"], language="en").text


def test_render_unknown_language_falls_back_to_english():
    out = render("password_reset", CONTEXTS["password_reset"], language="fr")
    assert out.subject == render("password_reset", CONTEXTS["password_reset"], language="en").subject


def test_render_missing_variable_raises():
    with pytest.raises(Invalid) as caught:
        render("password_reset", {})
    assert caught.value.code == "template_render_failed"


def test_render_html_part_autoescapes_values():
    evil = {
        **CONTEXTS["invitation"],
        "inviter": "<script>alert(1)</script>",
        "tenant_name": "A & B <b>",
        "link": 'https://x.test/?token=t"><img src=x onerror=alert(1)>',
        "brand_color": '#000" onmouseover="alert(1)',
    }
    out = render("invitation", evil, language="en")
    assert out.html is not None
    assert "<script>" not in out.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out.html
    assert "A &amp; B &lt;b&gt;" in out.html
    assert '"><img' not in out.html
    assert '" onmouseover="' not in out.html
    # The plain-text part is not HTML and stays literal.
    assert "<script>alert(1)</script>" in out.text


class _Thing:
    def __init__(self) -> None:
        self.secret = "s3cr3t"


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ ().__class__.__base__.__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ lipsum.__globals__['os'] }}",
        "{{ x.__dict__ }}",
        "{{ '{0.__class__}'.format(x) }}",
        "{{ items.append(1) }}",
        "{{ mapping.update({'a': 1}) }}",
    ],
)
def test_render_string_sandbox_refuses_internals_and_mutation(source):
    # No globals at all (lipsum, cycler, range): those names are simply undefined.
    with pytest.raises((SecurityError, UndefinedError)):
        render_string(source, {"x": _Thing(), "items": [], "mapping": {}})


def test_render_string_renders_plain_values():
    assert render_string("Hi {{ name }}, {{ n + 1 }}", {"name": "Ada", "n": 1}) == "Hi Ada, 2"
