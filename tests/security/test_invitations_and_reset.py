"""Invitations and password resets: single-use mailed links, delivered through the outbox."""

from __future__ import annotations

import uuid
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from tenantry.db.tables import OutboxMessage, User, UserToken
from tenantry.db.types import utcnow
from tenantry.jobs import outbox_delivery
from tenantry.jobs.outbox_delivery import backoff, claim, deliver_due
from tenantry.mail import outbox as mail_outbox
from tests.personas import PASSWORD
from tests.security.helpers import (
    NEW_PASSWORD,
    bearer,
    code_of,
    counting,
    in_parallel,
    link_token,
    login,
    outbox,
    outbox_one,
)
from tests.smtp_sink import free_port

INVITEE = "invitee@example.com"
MEMBER = "acme.member@example.com"


def _invite(client, personas, email: str = INVITEE) -> dict:
    r = client.post("/api/v1/users", json={"email": email}, headers=bearer(personas.tokens["superadmin"]))
    assert r.status_code == 201, r.text
    assert r.json()["invitation_pending"] is True
    return r.json()


def _latest_token(db, to: str, kind: str) -> str:
    msgs = outbox(db, to=to, kind=kind)
    assert msgs, f"no {kind} mail to {to}"
    return link_token(msgs[-1].body_text)


def _accept(client, token: str, password: str = PASSWORD):
    return client.post("/api/v1/auth/invitations/accept", json={"token": token, "password": password})


def _reset(client, token: str, password: str = NEW_PASSWORD):
    return client.post("/api/v1/auth/password/reset", json={"token": token, "new_password": password})


def _forgot(client, email: str):
    return client.post("/api/v1/auth/password/forgot", json={"email": email})


def _expire_tokens(db, email: str, kind: str) -> None:
    with db.unit_of_work() as session:
        user_id = session.scalar(select(User.id).where(User.email == email))
        session.execute(
            update(UserToken)
            .where(UserToken.user_id == user_id, UserToken.kind == kind)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


def _make_due(db, msg_id: uuid.UUID) -> None:
    """Move a retry into the past instead of waiting for its backoff."""
    with db.unit_of_work() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == msg_id)
            .values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )


# --- invitation delivery -----------------------------------------------------------------------


def test_invitation_queued_and_delivered_over_smtp(client, personas, clean_db, smtp_sink, settings_env):
    settings_env(SMTP_URL=smtp_sink.url)
    _invite(client, personas)
    queued = outbox(clean_db, to=INVITEE, kind="invitation")
    assert len(queued) == 1
    assert queued[0].sent_at is None
    assert smtp_sink.messages == []

    assert deliver_due(clean_db, client.app.state.settings) == 1
    received = smtp_sink.to(INVITEE)
    assert len(received) == 1
    mail = received[0]
    assert mail.msg["To"] == INVITEE
    assert "token=" in mail.text
    assert link_token(mail.text) == link_token(queued[0].body_text)
    assert mail.html is not None and "token=" in mail.html
    row = outbox_one(clean_db, queued[0].id)
    assert row.sent_at is not None
    assert row.attempts == 1
    # Sent once: nothing is due any more.
    assert deliver_due(clean_db, client.app.state.settings) == 0
    assert len(smtp_sink.messages) == 1


def test_invitation_without_smtp_url_goes_to_file_outbox(client, personas, clean_db, tmp_path, settings_env):
    settings_env(SMTP_URL=None, OUTBOX_DIR=tmp_path / "outbox")
    _invite(client, personas)
    assert deliver_due(clean_db, client.app.state.settings) == 1
    files = list((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 1
    mail = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert mail["To"] == INVITEE
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "token=" in body


def test_invitation_accept_sets_password_and_returns_token(client, personas, clean_db):
    user = _invite(client, personas)
    r = _accept(client, _latest_token(clean_db, INVITEE, "invitation"))
    assert r.status_code == 200, r.text
    me = client.get("/api/v1/me", headers=bearer(r.json()["token"]))
    assert me.status_code == 200
    assert me.json()["id"] == user["id"]
    assert me.json()["invitation_pending"] is False
    assert login(client, INVITEE).status_code == 200


def test_invitation_link_reused_422(client, personas, clean_db):
    _invite(client, personas)
    token = _latest_token(clean_db, INVITEE, "invitation")
    assert _accept(client, token).status_code == 200
    again = _accept(client, token, NEW_PASSWORD)
    assert again.status_code == 422
    assert code_of(again) == "invalid_or_expired_token"
    assert login(client, INVITEE, NEW_PASSWORD).status_code == 401  # the reuse changed nothing


def test_invitation_expired_422(client, personas, clean_db):
    _invite(client, personas)
    token = _latest_token(clean_db, INVITEE, "invitation")
    _expire_tokens(clean_db, INVITEE, "invitation")
    r = _accept(client, token)
    assert r.status_code == 422
    assert code_of(r) == "invalid_or_expired_token"


def test_invitation_default_expiry_7_days(client, personas, clean_db):
    user = _invite(client, personas)
    with clean_db.unit_of_work() as session:
        row = session.scalar(select(UserToken).where(UserToken.user_id == uuid.UUID(user["id"])))
        assert timedelta(days=7) - timedelta(minutes=1) < row.expires_at - row.created_at <= timedelta(days=7)


def test_invitation_resend_invalidates_old_link(client, personas, clean_db):
    user = _invite(client, personas)
    old = _latest_token(clean_db, INVITEE, "invitation")
    r = client.post(f"/api/v1/users/{user['id']}/invitation", headers=bearer(personas.tokens["superadmin"]))
    assert r.status_code == 204
    new = _latest_token(clean_db, INVITEE, "invitation")
    assert new != old
    stale = _accept(client, old)
    assert stale.status_code == 422
    assert code_of(stale) == "invalid_or_expired_token"
    assert _accept(client, new).status_code == 200


def test_invitation_link_of_deactivated_user_422(client, personas, clean_db):
    user = _invite(client, personas)
    token = _latest_token(clean_db, INVITEE, "invitation")
    h = bearer(personas.tokens["superadmin"])
    assert client.patch(f"/api/v1/users/{user['id']}", json={"active": False}, headers=h).status_code == 200
    r = _accept(client, token)
    assert r.status_code == 422
    assert code_of(r) == "invalid_or_expired_token"
    assert client.get(f"/api/v1/users/{user['id']}", headers=h).json()["active"] is False


def test_invitation_link_dead_once_password_set_by_reset(client, personas, clean_db):
    _invite(client, personas)
    invitation = _latest_token(clean_db, INVITEE, "invitation")
    assert _forgot(client, INVITEE).status_code == 202
    assert _reset(client, _latest_token(clean_db, INVITEE, "password_reset")).status_code == 204
    # The old invitation must not set the password again without knowing the current one.
    r = _accept(client, invitation, "an-attacker-chosen-passphrase-abc")
    assert r.status_code == 422
    assert code_of(r) == "invalid_or_expired_token"
    assert login(client, INVITEE, NEW_PASSWORD).status_code == 200


def test_invitation_accept_weak_password_422_and_link_still_usable(client, personas, clean_db):
    _invite(client, personas)
    token = _latest_token(clean_db, INVITEE, "invitation")
    weak = _accept(client, token, "short")
    assert weak.status_code == 422
    assert code_of(weak) in ("password_too_short", "password_too_weak")
    assert _accept(client, token).status_code == 200


def test_invitation_token_stored_hashed(client, personas, clean_db):
    _invite(client, personas)
    token = _latest_token(clean_db, INVITEE, "invitation")
    with clean_db.unit_of_work() as session:
        rows = session.execute(select(UserToken.__table__)).all()
    dump = repr(rows)
    assert token not in dump


# --- delivery failures and the lease -----------------------------------------------------------


def test_outbox_smtp_down_retries_with_backoff_then_delivers(
    client, personas, clean_db, smtp_sink, settings_env
):
    settings_env(SMTP_URL=f"smtp://127.0.0.1:{free_port()}", SMTP_TIMEOUT_SECONDS=2)
    _invite(client, personas)
    msg = outbox(clean_db, to=INVITEE)[0]

    before = utcnow()
    assert deliver_due(clean_db, client.app.state.settings) == 0
    row = outbox_one(clean_db, msg.id)
    assert row.attempts == 1
    assert row.sent_at is None and row.failed_at is None
    assert row.last_error
    assert row.locked_until is None
    assert row.next_attempt_at >= before + backoff(1)

    # The second failure waits longer.
    _make_due(clean_db, msg.id)
    before = utcnow()
    assert deliver_due(clean_db, client.app.state.settings) == 0
    row = outbox_one(clean_db, msg.id)
    assert row.attempts == 2
    assert row.next_attempt_at >= before + backoff(2)
    assert backoff(2) > backoff(1)

    # The server is back, but the message is not due yet: nothing is sent early.
    settings_env(SMTP_URL=smtp_sink.url)
    assert deliver_due(clean_db, client.app.state.settings) == 0
    assert smtp_sink.messages == []

    _make_due(clean_db, msg.id)
    assert deliver_due(clean_db, client.app.state.settings) == 1
    assert len(smtp_sink.to(INVITEE)) == 1
    row = outbox_one(clean_db, msg.id)
    assert row.sent_at is not None
    assert row.attempts == 3


def test_outbox_gives_up_after_max_attempts(client, personas, clean_db, smtp_sink, settings_env):
    settings_env(SMTP_URL=f"smtp://127.0.0.1:{free_port()}", MAIL_MAX_ATTEMPTS=2, SMTP_TIMEOUT_SECONDS=2)
    _invite(client, personas)
    msg = outbox(clean_db, to=INVITEE)[0]
    deliver_due(clean_db, client.app.state.settings)
    _make_due(clean_db, msg.id)
    deliver_due(clean_db, client.app.state.settings)
    row = outbox_one(clean_db, msg.id)
    assert row.attempts == 2
    assert row.failed_at is not None
    settings_env(SMTP_URL=smtp_sink.url)
    _make_due(clean_db, msg.id)
    assert deliver_due(clean_db, client.app.state.settings) == 0
    assert smtp_sink.messages == []


def _queue(db, n: int) -> list[uuid.UUID]:
    with db.unit_of_work() as session:
        msgs = [
            mail_outbox.enqueue(
                session, kind="password_reset", to=f"r{i}@example.com", context={"link": "https://x/?token=t"}
            )
            for i in range(n)
        ]
        session.flush()
        return [m.id for m in msgs]


def test_outbox_concurrent_claims_never_return_the_same_message(clean_db):
    for _round in range(5):
        ids = _queue(clean_db, 12)  # fresh messages each round; earlier ones are leased
        results = in_parallel(4, lambda: [m.id for m in claim(clean_db, batch=4)])
        claimed = [i for r in results for i in r]
        assert len(claimed) == len(set(claimed)), "a message was leased twice"
        assert set(claimed) == set(ids)  # 4 workers x 4 cover the 12 new ones, each once
        assert claim(clean_db) == []  # all leased: nobody gets them again


def test_outbox_expired_lease_can_be_claimed_again(clean_db):
    [msg_id] = _queue(clean_db, 1)
    assert [m.id for m in claim(clean_db)] == [msg_id]
    assert claim(clean_db) == []
    with clean_db.unit_of_work() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == msg_id)
            .values(locked_until=utcnow() - timedelta(seconds=1))
        )
    assert [m.id for m in claim(clean_db)] == [msg_id]


def test_outbox_message_only_queued_when_change_commits(clean_db):
    with pytest.raises(RuntimeError), clean_db.unit_of_work() as session:
        mail_outbox.enqueue(session, kind="password_reset", to="x@example.com", context={"link": "l"})
        session.flush()
        raise RuntimeError("the change fails")
    assert outbox(clean_db) == []
    assert outbox_delivery.claim(clean_db) == []


# --- password reset ----------------------------------------------------------------------------


def test_forgot_password_mails_a_reset_link(client, personas, clean_db, smtp_sink, settings_env):
    settings_env(SMTP_URL=smtp_sink.url)
    r = _forgot(client, MEMBER)
    assert r.status_code == 202
    assert deliver_due(clean_db, client.app.state.settings) == 1
    [mail] = smtp_sink.to(MEMBER)
    assert "reset-password?token=" in mail.text
    with clean_db.unit_of_work() as session:
        row = session.scalar(select(UserToken).where(UserToken.kind == "password_reset"))
        assert timedelta(minutes=59) < row.expires_at - row.created_at <= timedelta(hours=1)


def test_password_reset_weak_password_422_and_token_still_usable(client, personas, clean_db):
    _forgot(client, MEMBER)
    token = _latest_token(clean_db, MEMBER, "password_reset")
    weak = _reset(client, token, "password")
    assert weak.status_code == 422
    assert code_of(weak) in ("password_too_short", "password_too_weak")
    assert _reset(client, token).status_code == 204
    assert login(client, MEMBER, NEW_PASSWORD).status_code == 200
    assert login(client, MEMBER, PASSWORD).status_code == 401


def test_password_reset_works_once_reuse_422(client, personas, clean_db):
    _forgot(client, MEMBER)
    token = _latest_token(clean_db, MEMBER, "password_reset")
    assert _reset(client, token).status_code == 204
    again = _reset(client, token, "yet-another-long-passphrase-nobody-guesses")
    assert again.status_code == 422
    assert code_of(again) == "invalid_or_expired_token"
    assert login(client, MEMBER, NEW_PASSWORD).status_code == 200


def test_password_reset_expired_422(client, personas, clean_db):
    _forgot(client, MEMBER)
    token = _latest_token(clean_db, MEMBER, "password_reset")
    _expire_tokens(clean_db, MEMBER, "password_reset")
    r = _reset(client, token)
    assert r.status_code == 422
    assert code_of(r) == "invalid_or_expired_token"
    assert login(client, MEMBER, PASSWORD).status_code == 200


def test_password_reset_second_request_invalidates_first_link(client, personas, clean_db):
    _forgot(client, MEMBER)
    first = _latest_token(clean_db, MEMBER, "password_reset")
    _forgot(client, MEMBER)
    second = _latest_token(clean_db, MEMBER, "password_reset")
    assert first != second
    assert _reset(client, first).status_code == 422
    assert _reset(client, second).status_code == 204


def test_password_reset_token_is_not_an_invitation_token(client, personas, clean_db):
    _forgot(client, MEMBER)
    token = _latest_token(clean_db, MEMBER, "password_reset")
    r = _accept(client, token)
    assert r.status_code == 422
    assert code_of(r) == "invalid_or_expired_token"


def test_password_reset_revokes_every_session(client, personas, clean_db):
    sessions = [personas.tokens["acme_member"], login(client, MEMBER).json()["token"]]
    key = client.post(
        "/api/v1/me/api-keys", json={"name": "k", "scope": "read"}, headers=bearer(sessions[0])
    ).json()["token"]
    for t in sessions:
        assert client.get("/api/v1/me", headers=bearer(t)).status_code == 200
    _forgot(client, MEMBER)
    assert _reset(client, _latest_token(clean_db, MEMBER, "password_reset")).status_code == 204
    for t in sessions:
        assert client.get("/api/v1/me", headers=bearer(t)).status_code == 401
    # Other users keep theirs.
    assert client.get("/api/v1/me", headers=bearer(personas.tokens["acme_admin"])).status_code == 200
    assert key  # (API keys are separate credentials; see the report)


def test_forgot_password_unknown_and_known_identical_and_one_argon2_each(
    client, personas, clean_db, monkeypatch
):
    calls = counting(monkeypatch, "tenantry.services.invitations.verify_password")
    known = _forgot(client, MEMBER)
    assert len(calls) == 1
    calls.clear()
    unknown = _forgot(client, "nobody-at-all@example.com")
    assert len(calls) == 1
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert known.headers["content-type"] == unknown.headers["content-type"]
    assert len(outbox(clean_db, kind="password_reset")) == 1  # only the real account got mail


def test_forgot_password_inactive_user_gets_no_mail_same_answer(client, personas, clean_db):
    with clean_db.unit_of_work() as session:
        session.scalar(select(User).where(User.email == MEMBER)).active = False
    r = _forgot(client, MEMBER)
    assert r.status_code == 202
    assert r.json() == _forgot(client, "nobody-at-all@example.com").json()
    assert outbox(clean_db, kind="password_reset") == []


def test_mail_links_use_the_public_url_given_to_create_app(backend, clean_db, personas):
    """Settings are injected: the app's own public URL reaches the mails, not the environment's."""
    from fastapi.testclient import TestClient

    from tenantry.api.app import create_app
    from tenantry.config import load_settings

    settings = load_settings(database_url=backend.app_url, public_url="https://console.example.test")
    with TestClient(create_app(settings, db=clean_db)) as c:
        assert _forgot(c, MEMBER).status_code == 202
    [mail] = outbox(clean_db, to=MEMBER)
    assert "https://console.example.test/reset-password?token=" in mail.body_text


# --- forgot-password: a few mails per address and hour -------------------------------------------


def test_forgot_password_at_most_3_mails_an_hour_same_answer_after(client, personas, clean_db):
    answers = [_forgot(client, MEMBER) for _ in range(3)]
    assert len(outbox(clean_db, to=MEMBER, kind="password_reset")) == 3
    fourth = _forgot(client, MEMBER)
    unknown = _forgot(client, "nobody-at-all@example.com")
    assert fourth.status_code == unknown.status_code == answers[0].status_code == 202
    assert fourth.json() == unknown.json() == answers[0].json()
    assert len(outbox(clean_db, to=MEMBER, kind="password_reset")) == 3  # no fourth mail
    # The last link sent stays valid: a limited request does not invalidate it.
    assert _reset(client, _latest_token(clean_db, MEMBER, "password_reset")).status_code == 204
    # Other addresses have their own allowance.
    assert _forgot(client, "acme.admin@example.com").status_code == 202
    assert len(outbox(clean_db, to="acme.admin@example.com", kind="password_reset")) == 1


def test_forgot_password_allowance_comes_back_after_an_hour(client, personas, clean_db, settings_env):
    settings_env(PASSWORD_RESET_MAX_PER_HOUR=1)
    _forgot(client, MEMBER)
    _forgot(client, MEMBER)
    assert len(outbox(clean_db, to=MEMBER, kind="password_reset")) == 1
    with clean_db.unit_of_work() as session:
        session.execute(update(UserToken).values(created_at=utcnow() - timedelta(minutes=61)))
    _forgot(client, MEMBER)
    assert len(outbox(clean_db, to=MEMBER, kind="password_reset")) == 2


def test_forgot_password_parallel_requests_never_pass_the_limit(app, personas, clean_db):
    statuses = in_parallel(8, lambda: _forgot(TestClient(app), MEMBER).status_code)
    assert statuses == [202] * 8
    assert len(outbox(clean_db, to=MEMBER, kind="password_reset")) == 3


# --- changing the password inside a session --------------------------------------------------------


def _change(client, token: str, current: str, new: str = NEW_PASSWORD):
    return client.post(
        "/api/v1/me/password", json={"current_password": current, "new_password": new}, headers=bearer(token)
    )


def test_password_change_ends_the_other_sessions_and_keeps_this_one(client, personas):
    token = personas.tokens["acme_member"]
    other = login(client, MEMBER).json()["token"]
    assert _change(client, token, PASSWORD).status_code == 204
    assert client.get("/api/v1/me", headers=bearer(other)).status_code == 401
    assert client.get("/api/v1/me", headers=bearer(token)).status_code == 200
    assert login(client, MEMBER, NEW_PASSWORD).status_code == 200


def test_password_change_wrong_current_password_429_after_the_free_failures(
    client, app, personas, frozen_auth_clock
):
    """A stolen session is no free oracle for the password: the sign-in throttle applies."""
    free = app.state.settings.login_free_failures
    token = personas.tokens["acme_member"]
    for i in range(free):
        r = _change(client, token, f"not-the-password-{i}")
        assert r.status_code == 422, r.text
        assert code_of(r) == "invalid_password"
    limited = _change(client, token, "not-the-password-either")
    assert limited.status_code == 429
    assert code_of(limited) == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0
    # The right password is turned away unchecked while waiting, and so is a sign-in.
    assert _change(client, token, PASSWORD).status_code == 429
    assert login(client, MEMBER).status_code == 429
    assert login(client, MEMBER, NEW_PASSWORD).status_code == 429


def test_password_change_wrong_current_passwords_lock_the_account(client, personas, clean_db, settings_env):
    settings_env(LOGIN_LOCK_AFTER=3, LOGIN_FREE_FAILURES=10)
    token = personas.tokens["acme_member"]
    assert [_change(client, token, f"wrong-{i}").status_code for i in range(3)] == [422] * 3
    assert code_of(_change(client, token, PASSWORD)) == "account_locked"
    assert len(outbox(clean_db, to=MEMBER, kind="lockout")) == 1


def test_password_change_weak_new_password_does_not_count_as_a_failure(
    client, app, personas, frozen_auth_clock
):
    free = app.state.settings.login_free_failures
    token = personas.tokens["acme_member"]
    for _ in range(free + 2):
        r = _change(client, token, PASSWORD, new="short")
        assert r.status_code == 422
        assert code_of(r) != "invalid_password"
    assert _change(client, token, PASSWORD).status_code == 204
