"""Two-factor authentication with real TOTP codes (pyotp) and recovery codes."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tenantry.db.tables import Tenant
from tests.personas import PASSWORD
from tests.security.helpers import bearer, code_of, in_parallel, login, outbox, totp_code, wrong_totp_code
from tests.settings_helpers import require_2fa

MEMBER = "acme.member@example.com"


@dataclass
class TwoFactor:
    secret: str
    recovery_codes: list[str]
    token: str  # the session that enabled 2FA
    enable_code: str  # the TOTP code spent on enabling


def _setup(client, token: str) -> dict:
    r = client.post("/api/v1/me/2fa/setup", headers=bearer(token))
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def two_factor(client, personas) -> TwoFactor:
    """acme_member with 2FA enabled using the code of the current step."""
    token = personas.tokens["acme_member"]
    secret = _setup(client, token)["secret"]
    code = totp_code(secret)
    r = client.post("/api/v1/me/2fa/enable", json={"code": code}, headers=bearer(token))
    assert r.status_code == 200, r.text
    return TwoFactor(secret, r.json()["recovery_codes"], token, code)


def test_2fa_setup_returns_secret_otpauth_uri_and_svg_qr(client, personas):
    body = _setup(client, personas.tokens["acme_member"])
    assert re.fullmatch(r"[A-Z2-7]{32}", body["secret"])
    parsed = pyotp.parse_uri(body["otpauth_uri"])
    assert body["otpauth_uri"].startswith("otpauth://totp/")
    assert parsed.secret == body["secret"]
    assert parsed.issuer == "Tenantry"
    assert parsed.name == MEMBER
    svg = body["qr_svg"]
    assert svg.lstrip().startswith("<svg") or "svg" in svg


def test_2fa_setup_alone_does_not_enable_it(client, personas):
    token = personas.tokens["acme_member"]
    _setup(client, token)
    assert client.get("/api/v1/me", headers=bearer(token)).json()["two_factor_enabled"] is False
    assert login(client, MEMBER).status_code == 200  # no code needed yet


def test_2fa_enable_with_wrong_code_422_invalid_totp(client, personas):
    token = personas.tokens["acme_member"]
    secret = _setup(client, token)["secret"]
    r = client.post("/api/v1/me/2fa/enable", json={"code": wrong_totp_code(secret)}, headers=bearer(token))
    assert r.status_code == 422
    assert code_of(r) == "invalid_totp"
    assert client.get("/api/v1/me", headers=bearer(token)).json()["two_factor_enabled"] is False


def test_2fa_enable_with_right_code_returns_10_recovery_codes(client, two_factor):
    codes = two_factor.recovery_codes
    assert len(codes) == 10
    assert len(set(codes)) == 10
    me = client.get("/api/v1/me", headers=bearer(two_factor.token)).json()
    assert me["two_factor_enabled"] is True


def test_2fa_setup_again_when_enabled_409(client, two_factor):
    r = client.post("/api/v1/me/2fa/setup", headers=bearer(two_factor.token))
    assert r.status_code == 409


def test_login_with_2fa_without_code_401_totp_required(client, two_factor):
    r = login(client, MEMBER)
    assert r.status_code == 401
    assert code_of(r) == "totp_required"
    assert "token" not in r.json()


def test_login_with_2fa_wrong_code_401_invalid_totp(client, two_factor):
    r = login(client, MEMBER, totp_code=wrong_totp_code(two_factor.secret))
    assert r.status_code == 401
    assert code_of(r) == "invalid_totp"


def test_login_with_2fa_wrong_password_and_right_code_401_invalid_credentials(client, two_factor):
    r = login(client, MEMBER, "not-the-password", totp_code=totp_code(two_factor.secret, 1))
    assert r.status_code == 401
    assert code_of(r) == "invalid_credentials"


def test_login_with_2fa_right_code_200(client, two_factor):
    # The current step was spent enabling 2FA; the next one is within the ±1 step window.
    r = login(client, MEMBER, totp_code=totp_code(two_factor.secret, 1))
    assert r.status_code == 200, r.text
    assert client.get("/api/v1/me", headers=bearer(r.json()["token"])).status_code == 200


def test_login_totp_code_used_to_enable_cannot_be_replayed(client, two_factor):
    r = login(client, MEMBER, totp_code=two_factor.enable_code)
    assert r.status_code == 401
    assert code_of(r) == "invalid_totp"


def test_login_same_totp_code_twice_401_replay(client, two_factor):
    code = totp_code(two_factor.secret, 1)
    assert login(client, MEMBER, totp_code=code).status_code == 200
    replay = login(client, MEMBER, totp_code=code)
    assert replay.status_code == 401
    assert code_of(replay) == "invalid_totp"
    # An older step is no better than the same one.
    assert login(client, MEMBER, totp_code=two_factor.enable_code).status_code == 401


def test_login_recovery_code_works_once(client, two_factor):
    code = two_factor.recovery_codes[0]
    first = login(client, MEMBER, totp_code=code)
    assert first.status_code == 200, first.text
    again = login(client, MEMBER, totp_code=code)
    assert again.status_code == 401
    assert code_of(again) == "invalid_totp"
    # The others still work.
    assert login(client, MEMBER, totp_code=two_factor.recovery_codes[1].upper()).status_code == 200


def test_2fa_disable_wrong_password_422(client, two_factor):
    r = client.request(
        "DELETE",
        "/api/v1/me/2fa",
        json={"password": "not-the-password", "code": two_factor.recovery_codes[0]},
        headers=bearer(two_factor.token),
    )
    assert r.status_code == 422
    assert code_of(r) == "invalid_password"
    assert login(client, MEMBER).status_code == 401  # still enabled


def test_2fa_disable_wrong_code_422(client, two_factor):
    r = client.request(
        "DELETE",
        "/api/v1/me/2fa",
        json={"password": PASSWORD, "code": wrong_totp_code(two_factor.secret)},
        headers=bearer(two_factor.token),
    )
    assert r.status_code == 422
    assert code_of(r) == "invalid_totp"
    assert code_of(login(client, MEMBER)) == "totp_required"


def test_2fa_disable_with_password_and_code_204(client, two_factor):
    r = client.request(
        "DELETE",
        "/api/v1/me/2fa",
        json={"password": PASSWORD, "code": totp_code(two_factor.secret, 1)},
        headers=bearer(two_factor.token),
    )
    assert r.status_code == 204, r.text
    assert login(client, MEMBER).status_code == 200
    me = client.get("/api/v1/me", headers=bearer(two_factor.token)).json()
    assert me["two_factor_enabled"] is False


# --- tenant requires 2FA -----------------------------------------------------------------------


def _require_2fa(db, slug: str) -> None:
    with db.unit_of_work() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
        assert tenant is not None
        tenant_id = tenant.id
    require_2fa(db, tenant_id)


def test_require_2fa_member_without_2fa_gets_restricted_session_until_enabled(client, personas, clean_db):
    _require_2fa(clean_db, "acme")
    r = login(client, MEMBER)
    assert r.status_code == 200
    assert r.json()["requires_2fa_setup"] is True
    token = r.json()["token"]
    h = bearer(token)

    blocked = client.get("/api/v1/tenants", headers=h)
    assert blocked.status_code == 403
    assert code_of(blocked) == "2fa_setup_required"
    for method, path, body in (
        ("PATCH", "/api/v1/me", {"first_name": "X"}),
        ("POST", "/api/v1/me/api-keys", {"name": "escape", "scope": "read_write"}),
        ("GET", "/api/v1/me/sessions", None),
        ("GET", f"/api/v1/tenants/{personas.acme.id}", None),
    ):
        r = client.request(method, path, json=body, headers=h)
        assert r.status_code == 403, (method, path)
        assert code_of(r) == "2fa_setup_required"
    assert client.get("/api/v1/me", headers=h).status_code == 200

    secret = _setup(client, token)["secret"]
    enabled = client.post("/api/v1/me/2fa/enable", json={"code": totp_code(secret)}, headers=h)
    assert enabled.status_code == 200, enabled.text
    assert len(enabled.json()["recovery_codes"]) == 10

    after = client.get("/api/v1/tenants", headers=h)
    assert after.status_code == 200
    assert [t["slug"] for t in after.json()["items"]] == ["acme"]


def test_require_2fa_does_not_restrict_members_of_other_tenants(client, personas, clean_db):
    _require_2fa(clean_db, "acme")
    r = login(client, "globex.member@example.com")
    assert r.json()["requires_2fa_setup"] is False
    assert client.get("/api/v1/tenants", headers=bearer(r.json()["token"])).status_code == 200


def test_require_2fa_member_with_2fa_gets_normal_session(client, two_factor, clean_db):
    _require_2fa(clean_db, "acme")
    r = login(client, MEMBER, totp_code=totp_code(two_factor.secret, 1))
    assert r.status_code == 200
    assert r.json()["requires_2fa_setup"] is False
    assert client.get("/api/v1/tenants", headers=bearer(r.json()["token"])).status_code == 200


# --- races and other credentials -----------------------------------------------------------------


@pytest.mark.parametrize("which", ["totp", "recovery"])
def test_login_same_code_in_parallel_one_wins_others_401(app, two_factor, which):
    code = totp_code(two_factor.secret, 1) if which == "totp" else two_factor.recovery_codes[0]

    def attempt() -> int:
        c = TestClient(app, raise_server_exceptions=False)
        return login(c, MEMBER, totp_code=code).status_code

    statuses = in_parallel(4, attempt)
    assert sorted(statuses) == [200, 401, 401, 401]


def test_2fa_management_with_api_key_403_session_required(client, personas):
    session = personas.tokens["acme_member"]
    key = client.post(
        "/api/v1/me/api-keys", json={"name": "automation", "scope": "read_write"}, headers=bearer(session)
    ).json()["token"]
    r = client.post("/api/v1/me/2fa/setup", headers=bearer(key))
    assert r.status_code == 403
    assert code_of(r) == "session_required"
    assert client.get("/api/v1/me", headers=bearer(session)).json()["two_factor_enabled"] is False
    assert login(client, MEMBER).status_code == 200


def test_2fa_recovery_codes_and_disable_with_api_key_403(client, two_factor):
    key = client.post(
        "/api/v1/me/api-keys",
        json={"name": "automation", "scope": "read_write"},
        headers=bearer(two_factor.token),
    ).json()["token"]
    r = client.post(
        "/api/v1/me/2fa/recovery-codes", json={"code": totp_code(two_factor.secret, 1)}, headers=bearer(key)
    )
    assert r.status_code == 403
    r = client.request(
        "DELETE",
        "/api/v1/me/2fa",
        json={"password": PASSWORD, "code": two_factor.recovery_codes[0]},
        headers=bearer(key),
    )
    assert r.status_code == 403
    assert code_of(login(client, MEMBER)) == "totp_required"


def test_disable_2fa_refused_while_a_tenant_requires_it(api, personas, clean_db):
    client = api("acme_member")
    totp = pyotp.TOTP(client.post("/api/v1/me/2fa/setup").json()["secret"])
    assert client.post("/api/v1/me/2fa/enable", json={"code": totp.now()}).status_code == 200
    require_2fa(clean_db, personas.acme.id)
    body = {"password": PASSWORD, "code": totp.now()}
    r = client.request("DELETE", "/api/v1/me/2fa", json=body)
    assert r.status_code == 409
    assert r.json()["code"] == "2fa_required_by_tenant"
    assert client.get("/api/v1/me").json()["two_factor_enabled"] is True


# --- codes and passwords inside a session are throttled like sign-in ---------------------------


def _enable(client, token: str, code: str):
    return client.post("/api/v1/me/2fa/enable", json={"code": code}, headers=bearer(token))


def _regenerate(client, token: str, code: str):
    return client.post("/api/v1/me/2fa/recovery-codes", json={"code": code}, headers=bearer(token))


def _disable(client, token: str, password: str, code: str):
    return client.request(
        "DELETE", "/api/v1/me/2fa", json={"password": password, "code": code}, headers=bearer(token)
    )


@pytest.mark.parametrize("operation", ["enable", "regenerate", "disable-password", "disable-code"])
def test_2fa_wrong_secrets_in_a_session_429_after_the_free_failures(
    client, personas, app, frozen_auth_clock, operation
):
    """A stolen session must not guess codes (or the password) faster than a sign-in could."""
    free = app.state.settings.login_free_failures
    token = personas.tokens["acme_member"]
    secret = _setup(client, token)["secret"]
    if operation != "enable":
        assert _enable(client, token, totp_code(secret)).status_code == 200
    wrong = wrong_totp_code(secret)
    attempt, right = {
        "enable": (
            lambda: _enable(client, token, wrong),
            lambda: _enable(client, token, totp_code(secret, 1)),
        ),
        "regenerate": (
            lambda: _regenerate(client, token, wrong),
            lambda: _regenerate(client, token, totp_code(secret, 1)),
        ),
        "disable-password": (
            lambda: _disable(client, token, "not-the-password", totp_code(secret, 1)),
            lambda: _disable(client, token, PASSWORD, totp_code(secret, 1)),
        ),
        "disable-code": (
            lambda: _disable(client, token, PASSWORD, wrong),
            lambda: _disable(client, token, PASSWORD, totp_code(secret, 1)),
        ),
    }[operation]
    for _ in range(free):
        r = attempt()
        assert r.status_code == 422, r.text
        assert code_of(r) in ("invalid_totp", "invalid_password")
    limited = attempt()
    assert limited.status_code == 429, limited.text
    assert code_of(limited) == "rate_limited"
    assert int(limited.headers["Retry-After"]) > 0
    # While waiting, the right secret is turned away unchecked, and so is a sign-in: one counter.
    assert right().status_code == 429
    assert login(client, MEMBER).status_code == 429


def test_2fa_right_code_in_a_session_resets_the_counter(client, personas, app, frozen_auth_clock):
    free = app.state.settings.login_free_failures
    token = personas.tokens["acme_member"]
    secret = _setup(client, token)["secret"]
    for _ in range(free - 1):
        assert _enable(client, token, wrong_totp_code(secret)).status_code == 422
    assert _enable(client, token, totp_code(secret)).status_code == 200
    for _ in range(free):
        assert _regenerate(client, token, wrong_totp_code(secret)).status_code == 422


def test_2fa_wrong_codes_in_a_session_lock_the_account_with_a_notice(
    client, personas, clean_db, settings_env
):
    settings_env(LOGIN_LOCK_AFTER=3, LOGIN_FREE_FAILURES=10)
    token = personas.tokens["acme_member"]
    secret = _setup(client, token)["secret"]
    assert [_enable(client, token, wrong_totp_code(secret)).status_code for _ in range(3)] == [422] * 3
    locked = _enable(client, token, totp_code(secret))
    assert locked.status_code == 429
    assert code_of(locked) == "account_locked"
    assert code_of(login(client, MEMBER)) == "account_locked"
    assert len(outbox(clean_db, to=MEMBER, kind="lockout")) == 1
    assert client.get("/api/v1/me", headers=bearer(token)).json()["two_factor_enabled"] is False


# --- changing 2FA ends the other sessions --------------------------------------------------------


def _me_status(client, token: str) -> int:
    return client.get("/api/v1/me", headers=bearer(token)).status_code


def test_2fa_enable_ends_the_other_sessions_and_keeps_this_one(client, personas):
    token = personas.tokens["acme_member"]
    other = login(client, MEMBER).json()["token"]
    secret = _setup(client, token)["secret"]
    assert _enable(client, token, totp_code(secret)).status_code == 200
    assert _me_status(client, other) == 401  # opened with the password alone
    assert _me_status(client, token) == 200
    assert _me_status(client, personas.tokens["acme_admin"]) == 200  # other users keep theirs


def test_2fa_disable_ends_the_other_sessions_and_keeps_this_one(client, two_factor):
    other = login(client, MEMBER, totp_code=totp_code(two_factor.secret, 1)).json()["token"]
    assert _me_status(client, other) == 200
    assert _disable(client, two_factor.token, PASSWORD, two_factor.recovery_codes[0]).status_code == 204
    assert _me_status(client, other) == 401
    assert _me_status(client, two_factor.token) == 200
