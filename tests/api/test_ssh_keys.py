"""`/api/v1/me/ssh-keys`: the caller's SSH public keys (issue 10)."""

from __future__ import annotations

import base64
import hashlib
import uuid
import warnings

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa
from sqlalchemy import func, select

from tenantry.db import scoping
from tenantry.db.session import Database
from tenantry.db.tables import AuditEvent, SshKey
from tests.asserts import assert_problem as _problem
from tests.personas import PASSWORD
from tests.settings_helpers import require_2fa

KEYS = "/api/v1/me/ssh-keys"


def _openssh(private_key) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )


def _ed25519() -> str:
    return _openssh(ed25519.Ed25519PrivateKey.generate())


def _rsa(bits: int) -> str:
    return _openssh(rsa.generate_private_key(public_exponent=65537, key_size=bits))


def _dsa() -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cryptography deprecates DSA: exactly why it is refused
        return _openssh(dsa.generate_private_key(key_size=1024))


def _fingerprint(openssh: str) -> str:
    blob = base64.b64decode(openssh.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _rows(db: Database) -> int:
    with db.sessions() as s, scoping.include_deleted(s):
        return s.scalar(select(func.count()).select_from(SshKey)) or 0


def _audit(db: Database, action: str) -> list[AuditEvent]:
    with db.sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _add(api, persona: str = "acme_member", name: str = "laptop", key: str | None = None) -> dict:
    r = api(persona).post(KEYS, json={"name": name, "public_key": key or _ed25519()})
    assert r.status_code == 201, r.text
    return r.json()


# --- add ---------------------------------------------------------------------------------------

ALGORITHMS = {
    "ed25519": ("ssh-ed25519", lambda: _ed25519()),
    "ecdsa-p256": ("ecdsa-sha2-nistp256", lambda: _openssh(ec.generate_private_key(ec.SECP256R1()))),
    "ecdsa-p384": ("ecdsa-sha2-nistp384", lambda: _openssh(ec.generate_private_key(ec.SECP384R1()))),
    "ecdsa-p521": ("ecdsa-sha2-nistp521", lambda: _openssh(ec.generate_private_key(ec.SECP521R1()))),
    "rsa-2048": ("ssh-rsa", lambda: _rsa(2048)),
    "rsa-3072": ("ssh-rsa", lambda: _rsa(3072)),
}


@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_add_ssh_key_each_algorithm_stored_with_type_comment_and_fingerprint(api, db, personas, algorithm):
    key_type, make = ALGORITHMS[algorithm]
    public = make()
    r = api("acme_member").post(
        KEYS, json={"name": " laptop ", "public_key": f"  {public}   me@laptop with spaces \n"}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == "laptop"
    assert body["key_type"] == key_type
    assert body["public_key"] == public  # normalized: type and blob, no comment
    assert body["comment"] == "me@laptop with spaces"
    assert body["fingerprint"] == _fingerprint(public)
    assert len(body["fingerprint"]) == len("SHA256:") + 43
    events = _audit(db, "ssh_key.add")
    assert len(events) == 1
    assert events[0].tenant_id is None
    assert events[0].actor_id == personas.users["acme_member"].id
    assert events[0].after["fingerprint"] == body["fingerprint"]
    assert public.split()[1] not in str(events[0].after)  # the audit keeps the fingerprint only


def test_add_ssh_key_without_comment(api):
    public = _ed25519()
    body = _add(api, key=public)
    assert body["comment"] == ""
    assert body["public_key"] == public


def test_fingerprint_matches_ssh_keygen_for_a_known_key(api):
    # A fixed key and the fingerprint `ssh-keygen -lf` prints for it.
    private = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    public = _openssh(private)
    body = _add(api, key=public)
    assert body["fingerprint"] == _fingerprint(public)
    assert body["fingerprint"].startswith("SHA256:") and "=" not in body["fingerprint"]


REFUSED = {
    "rsa-1024": (lambda: _rsa(1024), "ssh_key_too_weak"),
    "dsa": (_dsa, "ssh_key_type_not_allowed"),
    "garbage": (lambda: "this is not a key", "invalid_ssh_key"),
    "one-word": (lambda: "AAAAC3NzaC1lZDI1NTE5", "invalid_ssh_key"),
    "bad-base64": (lambda: "ssh-ed25519 @@@not-base64@@@", "invalid_ssh_key"),
    "type-mismatch": (lambda: "ssh-rsa " + _ed25519().split()[1], "invalid_ssh_key"),
    "trailing-junk-in-blob": (
        lambda: "ssh-ed25519 " + base64.b64encode(base64.b64decode(_ed25519().split()[1]) + b"junk").decode(),
        "invalid_ssh_key",
    ),
    "two-keys": (lambda: _ed25519() + "\n" + _ed25519(), "invalid_ssh_key"),
    "unknown-type": (lambda: "ssh-foo " + _ed25519().split()[1], "invalid_ssh_key"),
    "certificate": (
        lambda: "ssh-ed25519-cert-v01@openssh.com " + _ed25519().split()[1],
        "ssh_key_type_not_allowed",
    ),
    "private-key": (
        lambda: (
            ed25519.Ed25519PrivateKey.generate()
            .private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
            )
            .decode()
        ),
        "ssh_private_key",
    ),
    "long-comment": (lambda: _ed25519() + " " + "c" * 256, "invalid_ssh_key"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_add_ssh_key_refused_422_nothing_written(api, db, case):
    make, code = REFUSED[case]
    sent = make()
    r = api("acme_member").post(KEYS, json={"name": "bad", "public_key": sent})
    body = _problem(r, 422, code)
    assert body.get("field") in (None, "public_key")
    if case == "private-key":
        assert "PRIVATE" not in r.text and sent.splitlines()[1] not in r.text  # never echoed
    assert _rows(db) == 0
    assert _audit(db, "ssh_key.add") == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "x"}, "validation_error"),
        ({"public_key": "ssh-ed25519 AAAA"}, "validation_error"),
        ({"name": "", "public_key": "x"}, "validation_error"),
        ({"name": "a\nb", "public_key": "x"}, "validation_error"),
        ({"name": "x", "public_key": "x", "user_id": str(uuid.uuid4())}, "validation_error"),
        ({"name": "x", "public_key": "x" * 16385}, "validation_error"),
    ],
)
def test_add_ssh_key_bad_body_422_nothing_written(api, db, body, code):
    _problem(api("acme_member").post(KEYS, json=body), 422, code)
    assert _rows(db) == 0


def test_add_same_key_twice_409_even_with_another_comment(api, db):
    public = _ed25519()
    first = _add(api, key=public + " one")
    body = _problem(
        api("acme_member").post(KEYS, json={"name": "again", "public_key": public + " two"}),
        409,
        "ssh_key_exists",
    )
    assert body["fingerprint"] == first["fingerprint"]
    assert _rows(db) == 1


def test_same_key_for_two_users_is_fine(api):
    public = _ed25519()
    _add(api, "acme_member", key=public)
    _add(api, "globex_member", key=public)


def test_deleted_key_can_be_added_again(api):
    public = _ed25519()
    first = _add(api, key=public)
    assert api("acme_member").delete(f"{KEYS}/{first['id']}").status_code == 204
    again = _add(api, key=public)
    assert again["id"] != first["id"]


def test_add_ssh_key_with_api_key_403_session_required(api, client, db, personas):
    for scope in ("read", "read_write"):
        token = (
            api("acme_member").post("/api/v1/me/api-keys", json={"name": "k", "scope": scope}).json()["token"]
        )
        r = client.post(
            KEYS, json={"name": "x", "public_key": _ed25519()}, headers={"Authorization": f"Bearer {token}"}
        )
        _problem(r, 403, "session_required")
    assert _rows(db) == 0


# --- list and get -------------------------------------------------------------------------------


def test_list_ssh_keys_shows_only_own_live_keys_paginated(api):
    mine = [_add(api, name=f"k{i}") for i in range(3)]
    gone = _add(api, name="gone")
    api("acme_member").delete(f"{KEYS}/{gone['id']}")
    _add(api, "acme_viewer", name="theirs")
    first = api("acme_member").get(KEYS, params={"limit": 2}).json()
    assert [k["name"] for k in first["items"]] == ["k0", "k1"]
    assert first["next_cursor"]
    rest = api("acme_member").get(KEYS, params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [k["name"] for k in rest["items"]] == ["k2"]
    assert rest["next_cursor"] is None
    assert [k["id"] for k in first["items"] + rest["items"]] == [k["id"] for k in mine]
    assert [k["name"] for k in api("acme_viewer").get(KEYS).json()["items"]] == ["theirs"]
    assert api("outsider").get(KEYS).json() == {"items": [], "next_cursor": None}


def test_list_ssh_keys_bad_input_422(api):
    _problem(api("acme_member").get(KEYS, params={"cursor": "nope"}), 422, "invalid_cursor")
    other_list = api("superadmin").get("/api/v1/users", params={"limit": 1}).json()["next_cursor"]
    _problem(api("acme_member").get(KEYS, params={"cursor": other_list}), 422, "invalid_cursor")
    _problem(api("acme_member").get(KEYS, params={"limit": 0}), 422, "validation_error")


def test_get_ssh_key(api):
    key = _add(api)
    r = api("acme_member").get(f"{KEYS}/{key['id']}")
    assert r.status_code == 200
    assert r.json() == key


def test_get_ssh_key_bad_id_422_unknown_404(api):
    _problem(api("acme_member").get(f"{KEYS}/not-a-uuid"), 422, "validation_error")
    _problem(api("acme_member").get(f"{KEYS}/{uuid.uuid4()}"), 404, "not_found")


def test_read_api_key_lists_and_gets_own_ssh_keys(api, client):
    key = _add(api)
    token = (
        api("acme_member").post("/api/v1/me/api-keys", json={"name": "r", "scope": "read"}).json()["token"]
    )
    headers = {"Authorization": f"Bearer {token}"}
    assert [k["id"] for k in client.get(KEYS, headers=headers).json()["items"]] == [key["id"]]
    assert client.get(f"{KEYS}/{key['id']}", headers=headers).status_code == 200


# --- another user's key: 404 everywhere ---------------------------------------------------------


@pytest.mark.parametrize("persona", ["acme_admin", "globex_admin", "superadmin", "outsider"])
def test_another_users_ssh_key_404_and_untouched(api, db, persona):
    key = _add(api, "acme_member")
    _problem(api(persona).get(f"{KEYS}/{key['id']}"), 404, "not_found")
    _problem(api(persona).delete(f"{KEYS}/{key['id']}"), 404, "not_found")
    assert key["id"] not in str(api(persona).get(KEYS).json())
    assert api("acme_member").get(f"{KEYS}/{key['id']}").status_code == 200
    assert _audit(db, "ssh_key.delete") == []


# --- delete -------------------------------------------------------------------------------------


def test_delete_ssh_key_audited_then_404(api, db, personas):
    key = _add(api)
    assert api("acme_member").delete(f"{KEYS}/{key['id']}").status_code == 204
    _problem(api("acme_member").get(f"{KEYS}/{key['id']}"), 404, "not_found")
    _problem(api("acme_member").delete(f"{KEYS}/{key['id']}"), 404, "not_found")
    events = _audit(db, "ssh_key.delete")
    assert len(events) == 1
    assert events[0].target_id == key["id"]
    assert events[0].before["fingerprint"] == key["fingerprint"]


def test_delete_ssh_key_bad_id_422(api):
    _problem(api("acme_member").delete(f"{KEYS}/not-a-uuid"), 422, "validation_error")


def test_delete_ssh_key_with_api_key_403_session_required(api, client):
    key = _add(api)
    token = (
        api("acme_member")
        .post("/api/v1/me/api-keys", json={"name": "k", "scope": "read_write"})
        .json()["token"]
    )
    r = client.delete(f"{KEYS}/{key['id']}", headers={"Authorization": f"Bearer {token}"})
    _problem(r, 403, "session_required")
    assert api("acme_member").get(f"{KEYS}/{key['id']}").status_code == 200


# --- not signed in ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", KEYS),
        ("POST", KEYS),
        ("GET", f"{KEYS}/00000000-0000-7000-8000-000000000001"),
        ("DELETE", f"{KEYS}/00000000-0000-7000-8000-000000000001"),
    ],
)
def test_ssh_keys_without_token_401(api, db, method, path):
    kwargs = {"json": {"name": "x", "public_key": _ed25519()}} if method == "POST" else {}
    _problem(api(None).request(method, path, **kwargs), 401, "unauthenticated")
    assert _rows(db) == 0


def test_session_that_owes_its_2fa_setup_403_on_every_endpoint(api, client, db, personas):
    key = _add(api)
    require_2fa(db, personas.acme.id)
    r = client.post("/api/v1/auth/login", json={"email": "acme.member@example.com", "password": PASSWORD})
    assert r.json()["requires_2fa_setup"] is True
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    for method, path, body in (
        ("GET", KEYS, None),
        ("POST", KEYS, {"name": "escape", "public_key": _ed25519()}),
        ("GET", f"{KEYS}/{key['id']}", None),
        ("DELETE", f"{KEYS}/{key['id']}", None),
    ):
        _problem(client.request(method, path, json=body, headers=headers), 403, "2fa_setup_required")
    assert _rows(db) == 1


# --- the owner's deletion takes the keys to the trash, and restore brings them back -------------


def test_deleting_the_owner_trashes_the_keys_and_restore_brings_them_back(api, db, personas):
    key = _add(api)
    user_id = personas.users["acme_member"].id
    assert api("superadmin").delete(f"/api/v1/users/{user_id}").status_code in (200, 202, 204)
    with db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(SshKey)) == 0
    assert api("superadmin").post(f"/api/v1/users/{user_id}/restore").status_code == 200
    with db.sessions() as s:
        assert [str(k) for k in s.scalars(select(SshKey.id))] == [key["id"]]
