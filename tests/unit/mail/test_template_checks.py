"""The check every template passes before it is saved or rendered (issue 11 item 4)."""

from __future__ import annotations

import pytest

from tenantry.errors import Invalid
from tenantry.mail.identity import LANGUAGES, MailIdentity
from tenantry.mail.render import KINDS, SAMPLE, TemplateSource, check_source, render, system_source

BRAND = MailIdentity("Acme Corp", None, "#aa3300", "https://acme.example/logo.png", "de", True)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", KINDS)
def test_system_templates_pass_the_tenant_check_and_render_branded(kind, language):
    src = system_source(kind, language)
    check_source(kind, src)  # a clone of any system template is saveable as it is
    out = render(kind, SAMPLE[kind], language=language, identity=BRAND)
    assert out.text and out.subject and out.html
    assert "https://acme.example/logo.png" in out.html and "#aa3300" in out.html


def test_broken_override_falls_back_and_is_logged(caplog):
    bad = TemplateSource("{{ ''.__class__ }}", "t", "h")
    out = render("password_reset", SAMPLE["password_reset"], language="en", override=bad, override_label="x1")
    assert out.subject == system_source("password_reset", "en").subject.replace("{{ product }}", "Tenantry")
    assert any("system template was used" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("{{ link }", "template_syntax_error"),
        ("{{ nope }}", "unknown_template_variable"),
        ("{% for x in link %}{% endfor %}", "template_not_allowed"),
        ("{{ link|format(1) }}", "template_not_allowed"),
        ("{{ link is callable }}", "template_not_allowed"),
    ],
)
def test_check_refuses(source, code):
    with pytest.raises(Invalid) as caught:
        check_source("password_reset", TemplateSource("s", source, "h"))
    assert caught.value.code == code
