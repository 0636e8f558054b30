"""SSH public keys of an account: ed25519, ecdsa (nistp256/384/521) and rsa ≥ 2048 bits only.

Keys are parsed with `cryptography`, stored normalized (`<type> <base64>`) with their comment
and OpenSSH SHA256 fingerprint, and unique per owner. The public functions work on the caller's
own keys; the owner is a parameter of everything below them, so a parent can later manage its
alias users' keys (`/me/aliases/{id}/ssh-keys`) through the same steps.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tenantry.authz.engine import require_authenticated, require_session
from tenantry.db.tables import SshKey
from tenantry.db.types import utcnow
from tenantry.errors import Conflict, Invalid, NotFound, Unauthenticated
from tenantry.services import audit
from tenantry.services.context import ServiceContext
from tenantry.services.pagination import Page, decode_uuid_cursor, encode_cursor

MIN_RSA_BITS = 2048
ALLOWED_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)
# Real OpenSSH key types that are refused on purpose (weak, or not supported here), so the
# client learns "not this kind of key" rather than "not a key".
_REFUSED_TYPES = re.compile(
    r"^(ssh-dss|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com|"
    r"ssh-ed448|[a-z0-9-]+-cert-v01@openssh\.com)$"
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
MAX_COMMENT = 255


@dataclass(frozen=True)
class ParsedKey:
    key_type: str
    public_key: str  # `<type> <base64 blob>`
    comment: str
    fingerprint: str  # `SHA256:<base64, no padding>`, as `ssh-keygen -l` prints it


def _invalid(detail: str, code: str = "invalid_ssh_key", **extra: object) -> Invalid:
    # Security: never echo what was sent: it may be a private key pasted by mistake.
    return Invalid(detail, code=code, field="public_key", **extra)


def parse_public_key(text: str) -> ParsedKey:
    """One OpenSSH public key line (`<type> <base64> [comment]`), or 422 with a stable code."""
    line = text.strip()
    if "PRIVATE KEY" in line:
        raise _invalid(
            "this is a private key: send the public one (the .pub file) and keep the private key secret",
            code="ssh_private_key",
        )
    if _CONTROL.search(line):
        raise _invalid("expected a single line: <type> <base64 key> [comment]")
    parts = line.split(None, 2)
    if len(parts) < 2:
        raise _invalid("expected an OpenSSH public key: <type> <base64 key> [comment]")
    key_type, blob = parts[0], parts[1]
    comment = parts[2].strip() if len(parts) == 3 else ""
    if key_type not in ALLOWED_TYPES:
        if _REFUSED_TYPES.match(key_type):
            raise _invalid(
                f"{key_type} keys are not accepted; use one of: {', '.join(ALLOWED_TYPES)}",
                code="ssh_key_type_not_allowed",
                key_type=key_type,
                allowed=list(ALLOWED_TYPES),
            )
        raise _invalid("expected an OpenSSH public key: <type> <base64 key> [comment]")
    try:
        key = serialization.load_ssh_public_key(f"{key_type} {blob}".encode("ascii"))
    except (ValueError, UnsupportedAlgorithm, UnicodeEncodeError):
        # Bad base64, a blob of another type, or bytes after the key: not a key we can trust.
        raise _invalid("the key data is not a valid OpenSSH public key") from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise _invalid(
                f"RSA keys need at least {MIN_RSA_BITS} bits (this one has {key.key_size})",
                code="ssh_key_too_weak",
                bits=key.key_size,
            )
    elif not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
        raise _invalid(  # defensive: the type names above admit nothing else
            f"use one of: {', '.join(ALLOWED_TYPES)}",
            code="ssh_key_type_not_allowed",
            allowed=list(ALLOWED_TYPES),
        )
    if len(comment) > MAX_COMMENT:
        raise _invalid(f"the key's comment is longer than {MAX_COMMENT} characters")
    normalized = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    norm_type, norm_blob = normalized.split(" ", 1)
    digest = hashlib.sha256(base64.b64decode(norm_blob)).digest()
    fingerprint = "SHA256:" + base64.b64encode(digest).decode().rstrip("=")
    return ParsedKey(norm_type, normalized, comment, fingerprint)


# --- the steps, for any owner (the caller authorizes) -------------------------------------------


def _list(ctx: ServiceContext, owner_id: uuid.UUID, limit: int, cursor: str | None) -> Page[SshKey]:
    stmt = select(SshKey).where(SshKey.user_id == owner_id)
    if cursor:
        stmt = stmt.where(SshKey.id > decode_uuid_cursor(cursor, "ssh_keys"))
    rows = list(ctx.session.scalars(stmt.order_by(SshKey.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor("ssh_keys", str(rows[-1].id)) if more else None)


def _find(ctx: ServiceContext, owner_id: uuid.UUID, key_id: uuid.UUID) -> SshKey:
    """One of `owner_id`'s keys; anyone else's is answered like one that does not exist."""
    key = ctx.session.scalar(select(SshKey).where(SshKey.id == key_id, SshKey.user_id == owner_id))
    if key is None:
        raise NotFound("SSH key")
    return key


def _duplicate(fingerprint: str) -> Conflict:
    return Conflict(
        f"this key ({fingerprint}) is already added",
        code="ssh_key_exists",
        field="public_key",
        fingerprint=fingerprint,
    )


def _add(ctx: ServiceContext, owner_id: uuid.UUID, name: str, public_key: str) -> SshKey:
    name = name.strip()
    if not name:
        raise Invalid("name must not be empty", code="invalid_name", field="name")
    parsed = parse_public_key(public_key)
    exists = select(SshKey.id).where(SshKey.user_id == owner_id, SshKey.fingerprint == parsed.fingerprint)
    if ctx.session.scalar(exists) is not None:
        raise _duplicate(parsed.fingerprint)
    key = SshKey(
        user_id=owner_id,
        name=name[:100],
        key_type=parsed.key_type,
        public_key=parsed.public_key,
        comment=parsed.comment,
        fingerprint=parsed.fingerprint,
    )
    ctx.session.add(key)
    try:
        with ctx.session.begin_nested():
            ctx.session.flush()
    except IntegrityError:  # a concurrent request added the same key first: the pre-check's answer
        raise _duplicate(parsed.fingerprint) from None
    audit.record(
        ctx,
        "ssh_key.add",
        target_type="ssh_key",
        target_id=key.id,
        tenant_id=None,
        after={
            "owner_id": owner_id,
            "name": key.name,
            "key_type": key.key_type,
            "fingerprint": key.fingerprint,
        },
    )
    return key


def _delete(ctx: ServiceContext, owner_id: uuid.UUID, key_id: uuid.UUID) -> None:
    key = _find(ctx, owner_id, key_id)
    key.deleted_at = utcnow()
    ctx.session.flush()
    audit.record(
        ctx,
        "ssh_key.delete",
        target_type="ssh_key",
        target_id=key.id,
        tenant_id=None,
        before={
            "owner_id": owner_id,
            "name": key.name,
            "key_type": key.key_type,
            "fingerprint": key.fingerprint,
        },
    )


# --- the caller's own keys ----------------------------------------------------------------------


def _me(ctx: ServiceContext) -> uuid.UUID:
    if ctx.principal.user_id is None:
        raise Unauthenticated("sign in first")
    return ctx.principal.user_id


def _require_session(ctx: ServiceContext) -> uuid.UUID:
    # Security: SSH keys are credentials, like API keys: a leaked API key must not plant one.
    require_session(ctx.principal, "manage SSH keys")
    return _me(ctx)


def list_ssh_keys(ctx: ServiceContext, *, limit: int, cursor: str | None = None) -> Page[SshKey]:
    require_authenticated(ctx.principal)
    return _list(ctx, _me(ctx), limit, cursor)


def get_ssh_key(ctx: ServiceContext, key_id: uuid.UUID) -> SshKey:
    require_authenticated(ctx.principal)
    return _find(ctx, _me(ctx), key_id)


def add_ssh_key(ctx: ServiceContext, *, name: str, public_key: str) -> SshKey:
    return _add(ctx, _require_session(ctx), name, public_key)


def delete_ssh_key(ctx: ServiceContext, key_id: uuid.UUID) -> None:
    _delete(ctx, _require_session(ctx), key_id)
