"""Sign-in protection: no enumeration, growing delays, lock-out, per-address limits, fixation."""

from __future__ import annotations

import os
import secrets
import threading
from ipaddress import ip_network
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tenantry.config import load_settings
from tenantry.db.tables import LoginThrottle, User
from tenantry.security.passwords import hash_password, needs_rehash
from tenantry.services import auth, throttle
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
    totp_code,
)

MEMBER = "acme.member@example.com"


def _retry_after(r) -> int:
    value = int(r.headers["Retry-After"])
    assert value > 0
    return value


def _deactivate(db, email: str) -> None:
    with db.unit_of_work() as session:
        user = session.scalar(select(User).where(User.email == email))
        assert user is not None
        user.active = False


def _failures(db, email: str) -> int | None:
    with db.unit_of_work() as session:
        row = session.get(LoginThrottle, auth.account_key(email))
        return None if row is None else row.failures


# --- enumeration ------------------------------------------------------------------------------


def test_login_unknown_wrong_and_inactive_identical_answer_and_one_argon2_verify_each(
    client, personas, clean_db, monkeypatch
):
    _deactivate(clean_db, "acme.viewer@example.com")
    calls = counting(monkeypatch, "tenantry.services.auth.verify_password")
    answers = []
    for email, password in (
        ("nobody-here@example.com", PASSWORD),  # unknown address
        (MEMBER, "wrong-password-for-this-account"),  # wrong password
        ("acme.viewer@example.com", PASSWORD),  # inactive account, right password
    ):
        calls.clear()
        r = login(client, email, password)
        assert len(calls) == 1, email
        answers.append((r.status_code, r.json(), r.headers.get("www-authenticate")))
    assert answers[0][0] == 401
    assert answers[0][1]["code"] == "invalid_credentials"
    assert answers[0] == answers[1] == answers[2]


def test_login_invited_user_without_password_same_answer_as_unknown(client, api, clean_db, monkeypatch):
    assert api("superadmin").post("/api/v1/users", json={"email": "pending@example.com"}).status_code == 201
    client.headers.pop("Authorization", None)
    calls = counting(monkeypatch, "tenantry.services.auth.verify_password")
    invited = login(client, "pending@example.com", "anything-at-all")
    unknown = login(client, "never-was@example.com", "anything-at-all")
    assert len(calls) == 2
    assert invited.status_code == unknown.status_code == 401
    assert invited.json() == unknown.json()


# --- brute force -------------------------------------------------------------------------------


def _hammer(client: TestClient, email: str, times: int) -> list[int]:
    return [login(client, email, "not-the-password").status_code for _ in range(times)]


@pytest.mark.parametrize("email", [MEMBER, "no-such-account@example.com"], ids=["existing", "unknown"])
def test_login_after_free_failures_429_with_retry_after(client, personas, frozen_auth_clock, email):
    free = load_settings().login_free_failures
    assert _hammer(client, email, free) == [401] * free
    r = login(client, email, "not-the-password")
    assert r.status_code == 429
    assert code_of(r) == "rate_limited"
    _retry_after(r)
    # While waiting even the right password is turned away (and does not reveal it was right).
    right = login(client, email, PASSWORD)
    assert right.status_code == 429
    assert right.json() == r.json()


def test_login_brute_force_same_behaviour_for_existing_and_unknown_email(client, personas, frozen_auth_clock):
    free = load_settings().login_free_failures
    seen = {}
    for email in (MEMBER, "no-such-account@example.com"):
        statuses = _hammer(client, email, free + 2)
        last = login(client, email, "not-the-password")
        seen[email] = (statuses, last.status_code, last.json(), last.headers["Retry-After"])
    existing, unknown = seen.values()
    assert existing == unknown
    assert existing[0] == [401] * free + [429, 429]


def test_login_delay_grows_after_free_failures(client, personas, frozen_auth_clock, clean_db):
    free = load_settings().login_free_failures
    _hammer(client, MEMBER, free)
    first = _retry_after(login(client, MEMBER, "x-wrong"))
    # Pretend the first delay passed: one more failure is allowed and the next wait is longer.
    with clean_db.unit_of_work() as session:
        row = session.get(LoginThrottle, auth.account_key(MEMBER))
        row.last_failed_at = frozen_auth_clock.replace(year=frozen_auth_clock.year - 1)
    assert login(client, MEMBER, "x-wrong").status_code == 401
    second = _retry_after(login(client, MEMBER, "x-wrong"))
    assert second > first


def test_login_success_resets_the_failure_count(client, personas, clean_db):
    for _ in range(3):
        assert login(client, MEMBER, "x-wrong").status_code == 401
    assert _failures(clean_db, MEMBER) == 3
    assert login(client, MEMBER).status_code == 200
    assert _failures(clean_db, MEMBER) is None


def test_login_parallel_guesses_never_race_past_the_limit(
    app, personas, clean_db, settings_env, frozen_auth_clock
):
    settings_env(LOGIN_MAX_DELAY_SECONDS=86400)
    free = load_settings().login_free_failures
    n = 20
    statuses = in_parallel(n, lambda: login(TestClient(app), MEMBER, "parallel-wrong-guess").status_code)
    assert len(statuses) == n
    assert set(statuses) <= {401, 429}
    passed = statuses.count(401)
    assert passed <= free + 1
    assert passed == free  # the clock stands still, so exactly the free attempts get through
    assert statuses.count(429) == n - passed
    assert _failures(clean_db, MEMBER) == passed


def test_login_parallel_right_password_never_500(app, personas):
    """A success deletes the throttle row while others wait to lock it: they must not crash."""

    def attempt() -> int:
        return login(TestClient(app, raise_server_exceptions=False), MEMBER).status_code

    for _ in range(3):
        statuses = in_parallel(8, attempt)
        # Every attempt counts before the password is checked, so some may have to wait (429).
        assert set(statuses) <= {200, 429}, statuses
        assert 200 in statuses


# --- lock-out ----------------------------------------------------------------------------------


def test_login_lockout_after_threshold_mails_notice_and_blocks_right_password(
    client, personas, clean_db, settings_env
):
    settings_env(LOGIN_LOCK_AFTER=3, LOGIN_FREE_FAILURES=10)
    assert _hammer(client, MEMBER, 3) == [401, 401, 401]
    locked = login(client, MEMBER, "still-wrong")
    assert locked.status_code == 429
    assert code_of(locked) == "account_locked"
    _retry_after(locked)
    notices = outbox(clean_db, to=MEMBER, kind="lockout")
    assert len(notices) == 1
    assert "forgot-password" in notices[0].body_text
    right = login(client, MEMBER, PASSWORD)
    assert right.status_code == 429
    assert code_of(right) == "account_locked"
    # The personas' existing session is not affected by the lock-out.
    assert client.get("/api/v1/me", headers=bearer(personas.tokens["acme_member"])).status_code == 200


def test_login_lockout_cleared_by_password_reset(client, personas, clean_db, settings_env):
    settings_env(LOGIN_LOCK_AFTER=3, LOGIN_FREE_FAILURES=10)
    _hammer(client, MEMBER, 3)
    assert code_of(login(client, MEMBER)) == "account_locked"
    assert client.post("/api/v1/auth/password/forgot", json={"email": MEMBER}).status_code == 202
    token = link_token(outbox(clean_db, to=MEMBER, kind="password_reset")[-1].body_text)
    r = client.post("/api/v1/auth/password/reset", json={"token": token, "new_password": NEW_PASSWORD})
    assert r.status_code == 204
    assert login(client, MEMBER, NEW_PASSWORD).status_code == 200


def test_login_lockout_of_unknown_email_looks_the_same(client, personas, clean_db, settings_env):
    settings_env(LOGIN_LOCK_AFTER=3, LOGIN_FREE_FAILURES=10)
    answers = []
    for email in (MEMBER, "ghost@example.com"):
        statuses = _hammer(client, email, 3)
        r = login(client, email, "still-wrong")
        answers.append((statuses, r.status_code, r.json(), r.headers["Retry-After"]))
    assert answers[0] == answers[1]
    assert outbox(clean_db, to="ghost@example.com") == []


# --- per client address ------------------------------------------------------------------------


def test_login_per_address_limit_429_across_different_emails(app, personas, settings_env):
    settings_env(LOGIN_IP_MAX_FAILURES=3)
    attacker = TestClient(app, client=("203.0.113.9", 40000))
    for i in range(3):
        assert login(attacker, f"guess-{i}@example.com", "wrong").status_code == 401
    blocked = login(attacker, MEMBER, PASSWORD)  # a fourth email, even with the right password
    assert blocked.status_code == 429
    assert code_of(blocked) == "rate_limited"
    _retry_after(blocked)
    # Another address is not affected.
    other = TestClient(app, client=("198.51.100.20", 40000))
    assert login(other, MEMBER, PASSWORD).status_code == 200


def test_login_per_address_limit_shared_through_redis(app, personas, settings_env):
    url = os.environ.get("TENANTRY_TEST_REDIS_URL")
    if not url:
        pytest.skip("TENANTRY_TEST_REDIS_URL is not set")
    import redis

    address = f"redis-test-{secrets.token_hex(6)}"
    r = redis.Redis.from_url(url)
    key = f"tenantry:login-fail:{address}"
    r.delete(key)
    try:
        settings_env(REDIS_URL=url, LOGIN_IP_MAX_FAILURES=3)
        assert isinstance(throttle.limiter(app.state.settings), throttle.RedisLimiter)
        attacker = TestClient(app, client=(address, 40000))
        for i in range(2):
            assert login(attacker, f"guess-{i}@example.com", "wrong").status_code == 401
        # A second instance (a new limiter object) shares the count through Redis.
        throttle.set_limiter(throttle.RedisLimiter(url, 3, app.state.settings.login_ip_window_seconds))
        assert login(attacker, "guess-2@example.com", "wrong").status_code == 401
        blocked = login(attacker, MEMBER, PASSWORD)
        assert blocked.status_code == 429
        assert code_of(blocked) == "rate_limited"
        _retry_after(blocked)
        assert r.zcard(key) == 3
    finally:
        r.delete(key)
        r.close()


# --- session fixation --------------------------------------------------------------------------


def test_login_twice_gives_two_different_tokens(client, personas):
    a, b = login(client, MEMBER), login(client, MEMBER)
    assert a.status_code == b.status_code == 200
    assert a.json()["token"] != b.json()["token"]
    assert personas.tokens["acme_member"] not in (a.json()["token"], b.json()["token"])


def test_login_does_not_revive_a_revoked_token(client, personas):
    old = login(client, MEMBER).json()["token"]
    assert client.post("/api/v1/auth/logout", headers=bearer(old)).status_code == 204
    assert client.get("/api/v1/me", headers=bearer(old)).status_code == 401
    new = login(client, MEMBER).json()["token"]
    assert new != old
    assert client.get("/api/v1/me", headers=bearer(old)).status_code == 401
    assert client.get("/api/v1/me", headers=bearer(new)).status_code == 200


def test_cookie_login_ignores_a_planted_session_cookie(client, personas):
    planted = "tnt_ses_" + secrets.token_urlsafe(32)
    r = client.post(
        "/api/v1/auth/session",
        json={"email": MEMBER, "password": PASSWORD},
        headers={"Cookie": f"tenantry_session={planted}"},
    )
    assert r.status_code == 200
    issued = r.cookies.get("tenantry_session")
    assert issued and issued != planted
    assert client.get("/api/v1/me", headers={"Cookie": f"tenantry_session={planted}"}).status_code == 401


def test_login_right_password_awaiting_totp_does_not_lock_the_account(client, personas, settings_env):
    """Asking for the second factor is not a failure: it must not count, nor lock the account."""
    settings_env(LOGIN_LOCK_AFTER=3, LOGIN_FREE_FAILURES=10)
    token = personas.tokens["acme_member"]
    secret = client.post("/api/v1/me/2fa/setup", headers=bearer(token)).json()["secret"]
    assert (
        client.post(
            "/api/v1/me/2fa/enable", json={"code": totp_code(secret)}, headers=bearer(token)
        ).status_code
        == 200
    )
    assert _hammer(client, MEMBER, 2) == [401, 401]
    assert code_of(login(client, MEMBER)) == "totp_required"  # the third attempt, right password
    r = login(client, MEMBER, totp_code=totp_code(secret, 1))
    assert r.status_code == 200, r.text


# --- per client address under concurrency --------------------------------------------------------


def _parallel_wrong_logins(app, address: str, n: int) -> list[int]:
    """`n` failed sign-ins released at once from one address, each for another email."""
    emails = iter([f"burst-{i}-{secrets.token_hex(3)}@example.com" for i in range(n)])
    lock = threading.Lock()

    def attempt() -> int:
        with lock:
            email = next(emails)
        c = TestClient(app, client=(address, 40000), raise_server_exceptions=False)
        return login(c, email, "parallel-wrong-guess").status_code

    return in_parallel(n, attempt)


def test_login_per_address_limit_holds_under_a_parallel_burst(app, personas, settings_env):
    """Check and count are one step: a burst cannot all pass the check before any is counted."""
    settings_env(LOGIN_IP_MAX_FAILURES=4)
    statuses = _parallel_wrong_logins(app, "203.0.113.77", 20)
    assert set(statuses) <= {401, 429}, statuses
    assert statuses.count(401) == 4
    # The right password from that address is turned away too, until the window passes.
    assert login(TestClient(app, client=("203.0.113.77", 40000)), MEMBER).status_code == 429


def test_login_per_address_limit_holds_under_a_parallel_burst_through_redis(app, personas, settings_env):
    url = os.environ.get("TENANTRY_TEST_REDIS_URL")
    if not url:
        pytest.skip("TENANTRY_TEST_REDIS_URL is not set")
    import redis

    address = f"redis-burst-{secrets.token_hex(6)}"
    r = redis.Redis.from_url(url)
    key = f"tenantry:login-fail:{address}"
    r.delete(key)
    try:
        settings_env(REDIS_URL=url, LOGIN_IP_MAX_FAILURES=4)
        assert isinstance(throttle.limiter(app.state.settings), throttle.RedisLimiter)
        statuses = _parallel_wrong_logins(app, address, 20)
        assert set(statuses) <= {401, 429}, statuses
        assert statuses.count(401) == 4
        assert r.zcard(key) == 4
    finally:
        r.delete(key)
        r.close()


def test_login_successes_and_totp_prompts_do_not_use_up_the_address_limit(
    client, app, personas, settings_env
):
    settings_env(LOGIN_IP_MAX_FAILURES=2)
    c = TestClient(app, client=("203.0.113.78", 40000))
    for _ in range(4):
        assert login(c, MEMBER).status_code == 200
    assert [login(c, f"nobody-{i}@example.com", "wrong").status_code for i in range(3)] == [401, 401, 429]


# --- X-Forwarded-For ---------------------------------------------------------------------------


def _spoofed(c: TestClient, email: str, password: str, forwarded_for: str):
    return c.post(
        "/api/v1/auth/login",
        json={"email": email, "password": password},
        headers={"X-Forwarded-For": forwarded_for},
    )


@pytest.mark.parametrize("trusted", [None, "10.0.0.0/8"], ids=["no-proxies", "peer-not-a-proxy"])
def test_login_forwarded_for_from_an_untrusted_peer_is_ignored(app, personas, settings_env, trusted):
    settings_env(LOGIN_IP_MAX_FAILURES=3, TRUSTED_PROXIES=[ip_network(trusted)] if trusted else [])
    attacker = TestClient(app, client=("203.0.113.9", 40000))
    for i in range(3):
        # A fresh made-up address every time: it must not buy a fresh per-address budget.
        assert _spoofed(attacker, f"guess-{i}@example.com", "wrong", f"198.51.100.{i + 1}").status_code == 401
    blocked = _spoofed(attacker, MEMBER, PASSWORD, "198.51.100.200")
    assert blocked.status_code == 429
    assert code_of(blocked) == "rate_limited"


def test_login_forwarded_for_from_a_trusted_proxy_names_the_client(app, personas, settings_env):
    settings_env(LOGIN_IP_MAX_FAILURES=3, TRUSTED_PROXIES=[ip_network("10.0.0.0/8")])
    proxy = TestClient(app, client=("10.1.2.3", 40000))
    for i in range(3):
        # The client may prepend anything; the proxy appended the real address at the right.
        spoof = f"192.0.2.{i + 1}, 198.51.100.7"
        assert _spoofed(proxy, f"guess-{i}@example.com", "wrong", spoof).status_code == 401
    blocked = _spoofed(proxy, MEMBER, PASSWORD, "198.51.100.7")
    assert blocked.status_code == 429
    # Another client behind the same proxy (even one more proxy hop away) is its own address.
    other = _spoofed(proxy, MEMBER, PASSWORD, "198.51.100.8, 10.9.9.9")
    assert other.status_code == 200, other.text
    sessions = proxy.get("/api/v1/me/sessions", headers=bearer(other.json()["token"])).json()
    assert [s["ip"] for s in sessions if s["current"]] == ["198.51.100.8"]


# --- password hashes follow the configured parameters ------------------------------------------


def test_login_rehashes_a_password_hashed_with_other_argon2_parameters(client, app, personas, clean_db):
    settings = app.state.settings
    old = hash_password(PASSWORD, SimpleNamespace(argon2_time_cost=2, argon2_memory_kib=2048))
    assert "m=2048,t=2" in old
    with clean_db.unit_of_work() as session:
        session.scalar(select(User).where(User.email == MEMBER)).password_hash = old
    assert needs_rehash(old, settings)

    assert login(client, MEMBER).status_code == 200
    with clean_db.unit_of_work() as session:
        stored = session.scalar(select(User.password_hash).where(User.email == MEMBER))
    assert stored != old
    assert f"m={settings.argon2_memory_kib},t={settings.argon2_time_cost}," in stored
    assert not needs_rehash(stored, settings)
    assert login(client, MEMBER).status_code == 200  # the upgraded hash checks the same password
    assert login(client, MEMBER, "not-the-password").status_code == 401


def test_login_wrong_password_does_not_rehash(client, personas, clean_db):
    old = hash_password(PASSWORD, SimpleNamespace(argon2_time_cost=2, argon2_memory_kib=2048))
    with clean_db.unit_of_work() as session:
        session.scalar(select(User).where(User.email == MEMBER)).password_hash = old
    assert login(client, MEMBER, "not-the-password").status_code == 401
    with clean_db.unit_of_work() as session:
        assert session.scalar(select(User.password_hash).where(User.email == MEMBER)) == old
