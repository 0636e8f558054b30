"""Mail headers never carry a line break, whatever the data they are built from holds."""

from __future__ import annotations

import uuid
from email import message_from_bytes, policy

import pytest

from tenantry.db.tables import OutboxMessage
from tenantry.mail.render import header_safe, render
from tenantry.mail.smtp import build

EVIL = "Acme\r\nBcc: everyone@example.com\n\x00Subject: forged"


@pytest.mark.parametrize("language", ["en", "de"])
def test_invitation_subject_is_one_line_whatever_the_tenant_name(language: str) -> None:
    context = {"link": "https://x.test/?token=t", "inviter": "Ada", "tenant_name": EVIL, "expires_at": "soon"}
    subject = render("invitation", context, language=language).subject
    assert not any(c in subject for c in "\r\n\x00")
    assert "Acme Bcc: everyone@example.com Subject: forged" in subject


def test_built_mail_has_one_subject_and_no_injected_header() -> None:
    msg = OutboxMessage(
        id=uuid.uuid4(),
        kind="invitation",
        to_addr="new@example.com\r\nBcc: spy@example.com",
        subject="You are invited to " + EVIL,
        body_text="Hello",
        body_html=None,
    )
    parsed = message_from_bytes(bytes(build(msg, "noreply@example.com")), policy=policy.default)
    assert parsed.get_all("Bcc") is None
    assert len(parsed.get_all("Subject")) == 1
    assert parsed["Subject"].startswith("You are invited to Acme Bcc")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("a\r\nb", "a b"),
        ("a\u2028b", "a b"),
        ("  a \t b  ", "a b"),
        ("a\x00\x1b[31mb", "a [31mb"),
        ("plain", "plain"),
    ],
)
def test_header_safe_collapses_controls_and_breaks(raw: str, clean: str) -> None:
    assert header_safe(raw) == clean
