"""Pure security helpers: redaction, argon2id passwords, token digests, UUIDv7 ids."""

from __future__ import annotations

import threading
import uuid

import pytest

from tenantry.config import load_settings
from tenantry.ids import TOKEN_PREFIX_API_KEY, TOKEN_PREFIX_SESSION, uuid7
from tenantry.security import tokens
from tenantry.security.passwords import hash_password, needs_rehash, verify_password
from tenantry.security.redact import REDACTED, is_secret, redact

# --- redact --------------------------------------------------------------------------------------


def test_redact_replaces_secret_fields_at_every_depth() -> None:
    event = {
        "email": "a@example.com",
        "password": "p1",
        "profile": {"name": "Ann", "totp_secret": "s1", "nested": [{"token": "t1", "keep": 1}]},
        "items": [[{"smtp_password": "p2"}], ("tuple", {"recovery_codes": ["c1", "c2"]})],
    }
    assert redact(event) == {
        "email": "a@example.com",
        "password": REDACTED,
        "profile": {"name": "Ann", "totp_secret": REDACTED, "nested": [{"token": REDACTED, "keep": 1}]},
        "items": [[{"smtp_password": REDACTED}], ["tuple", {"recovery_codes": REDACTED}]],
    }


@pytest.mark.parametrize(
    "key", ["db_password", "ldap_bind_password", "refresh_token", "csrf_token", "client_secret", "token_hash"]
)
def test_redact_treats_suffixed_keys_as_secret(key: str) -> None:
    assert redact({key: "x", "other": "y"}) == {key: REDACTED, "other": "y"}


@pytest.mark.parametrize("key", ["Password", "AUTHORIZATION", "Cookie", "Api_Key", "Refresh_Token"])
def test_redact_matches_keys_case_insensitively(key: str) -> None:
    assert redact({key: "x"}) == {key: REDACTED}


@pytest.mark.parametrize("key", ["email", "name", "password_changed_at", "tokens_issued", "description"])
def test_redact_keeps_ordinary_keys(key: str) -> None:
    assert is_secret(key) is False
    assert redact({key: "visible"}) == {key: "visible"}


@pytest.mark.parametrize("key", ["X-Api-Key", "Set-Cookie", "Proxy-Authorization", "apiKey"])
def test_redact_treats_header_and_camel_case_secret_names_as_secret(key: str) -> None:
    assert redact({key: "x"}) == {key: REDACTED}


def test_redact_leaves_its_input_untouched() -> None:
    original = {"password": "p", "inner": {"token": "t"}, "list": [{"secret": "s"}]}
    redact(original)
    assert original == {"password": "p", "inner": {"token": "t"}, "list": [{"secret": "s"}]}


def test_redact_passes_scalars_through() -> None:
    assert [redact(v) for v in ("password", 3, None, 1.5)] == ["password", 3, None, 1.5]


# --- passwords -----------------------------------------------------------------------------------

# Cheap parameters, as the suite uses; the algorithm is the same.
P = load_settings(argon2_time_cost=1, argon2_memory_kib=1024)


def test_hash_password_produces_argon2id() -> None:
    assert hash_password("correct horse battery staple", P).startswith("$argon2id$")


def test_hash_password_salts_each_hash() -> None:
    assert hash_password("same password", P) != hash_password("same password", P)


def test_verify_password_accepts_the_right_password() -> None:
    assert (
        verify_password(hash_password("correct horse battery staple", P), "correct horse battery staple", P)
        is True
    )


@pytest.mark.parametrize(
    "attempt", ["wrong", "correct horse battery stapl", "Correct horse battery staple", ""]
)
def test_verify_password_rejects_a_wrong_password(attempt: str) -> None:
    assert verify_password(hash_password("correct horse battery staple", P), attempt, P) is False


@pytest.mark.parametrize("attempt", ["anything", "", "tenantry-dummy-password-for-timing"])
def test_verify_password_without_a_hash_is_false(attempt: str) -> None:
    assert verify_password(None, attempt, P) is False


def test_verify_password_with_an_empty_hash_is_false_even_for_the_dummy_password() -> None:
    assert verify_password("", "tenantry-dummy-password-for-timing", P) is False


@pytest.mark.parametrize("stored", ["not-a-hash", "$2b$12$abcdefghijklmnopqrstuv", "$argon2id$v=19$broken"])
def test_verify_password_with_a_malformed_hash_is_false(stored: str) -> None:
    assert verify_password(stored, "not-a-hash", P) is False


def test_needs_rehash_is_false_for_a_fresh_hash() -> None:
    assert needs_rehash(hash_password("pw", P), P) is False


def test_needs_rehash_is_true_for_weaker_parameters() -> None:
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("pw")
    assert needs_rehash(weak, P) is True


def test_needs_rehash_is_true_when_the_configured_parameters_grow() -> None:
    stronger = load_settings(argon2_time_cost=2, argon2_memory_kib=2048)
    assert needs_rehash(hash_password("pw", P), stronger) is True


@pytest.mark.parametrize(
    ("stored", "typed"),
    [
        ("\u212bngstr\u00f6m-pass", "\u00c5ngstr\u00f6m-pass"),  # Angstrom sign vs. A with ring
        ("caf\u00e9-password", "cafe\u0301-password"),  # composed vs. combining accent
        ("\uff30\uff41\uff53\uff53", "Pass"),  # full-width letters (NFKC compatibility)
    ],
)
def test_verify_password_normalises_unicode_nfkc(stored: str, typed: str) -> None:
    assert verify_password(hash_password(stored, P), typed, P) is True


@pytest.mark.parametrize("typed", [" secret words here", "secret words here ", "secret words here\n"])
def test_verify_password_never_trims(typed: str) -> None:
    assert verify_password(hash_password("secret words here", P), typed, P) is False
    assert verify_password(hash_password(typed, P), typed, P) is True


# --- tokens --------------------------------------------------------------------------------------


def test_digest_is_sha256_hex() -> None:
    # FIPS 180-2 test vector for "abc".
    assert tokens.digest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_digest_of_a_token_is_64_lowercase_hex_characters() -> None:
    d = tokens.digest(tokens.new_token(TOKEN_PREFIX_SESSION))
    assert len(d) == 64
    assert set(d) <= set("0123456789abcdef")


@pytest.mark.parametrize("prefix", [TOKEN_PREFIX_SESSION, TOKEN_PREFIX_API_KEY])
def test_new_token_carries_its_prefix_and_is_unique(prefix: str) -> None:
    issued = {tokens.new_token(prefix) for _ in range(100)}
    assert len(issued) == 100
    assert all(t.startswith(prefix) and len(t) > len(prefix) + 40 for t in issued)


def test_same_compares_exactly() -> None:
    assert tokens.same("tnt_ses_abc", "tnt_ses_abc") is True
    assert tokens.same("tnt_ses_abc", "tnt_ses_abd") is False
    assert tokens.same("tnt_ses_abc", "tnt_ses_ab") is False


# --- uuid7 ---------------------------------------------------------------------------------------


def test_uuid7_is_version_7_with_the_rfc_variant() -> None:
    ids = [uuid7() for _ in range(1000)]
    assert {u.version for u in ids} == {7}
    assert {u.variant for u in ids} == {uuid.RFC_4122}


def test_uuid7_is_strictly_increasing_over_10k_calls() -> None:
    ids = [uuid7() for _ in range(10_000)]
    assert all(a < b for a, b in zip(ids, ids[1:], strict=False))
    assert {u.version for u in ids} == {7}


def test_uuid7_is_unique_across_threads() -> None:
    per_thread: list[list[uuid.UUID]] = [[] for _ in range(4)]

    def work(out: list[uuid.UUID]) -> None:
        out.extend(uuid7() for _ in range(2_500))

    threads = [threading.Thread(target=work, args=(out,)) for out in per_thread]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    all_ids = [u for out in per_thread for u in out]
    assert len(set(all_ids)) == 10_000
    assert all(all(a < b for a, b in zip(out, out[1:], strict=False)) for out in per_thread)
