"""The engine's impersonation rules, without a database: who may act as whom, what a token may do."""

from __future__ import annotations

import uuid

import pytest

from tenantry.authz import Principal
from tenantry.authz.engine import caller_limit, may_impersonate, require_authenticated, require_session
from tenantry.errors import PermissionDenied

A, B = uuid.uuid4(), uuid.uuid4()


@pytest.mark.parametrize(
    ("real_super", "target_super", "same", "allowed"),
    [
        (True, False, False, True),
        (True, True, False, False),  # never a superadmin
        (True, False, True, False),  # never oneself
        (False, False, False, False),  # nobody else (aliases: a later hook)
    ],
)
def test_may_impersonate(real_super: bool, target_super: bool, same: bool, allowed: bool) -> None:
    assert (
        may_impersonate(
            impersonator_id=A,
            impersonator_is_superadmin=real_super,
            target_id=A if same else B,
            target_is_superadmin=target_super,
        )
        is allowed
    )


def test_read_only_impersonation_gets_its_own_code() -> None:
    p = Principal(kind="user", user_id=B, impersonator_id=A, key_scope="read")
    limit = caller_limit(p, "tenant.update", None)
    assert limit is not None and limit.code == "impersonation_read_only"
    assert caller_limit(p, "tenant.read", None) is None
    with pytest.raises(PermissionDenied) as exc:
        require_authenticated(p, writes=True)
    assert exc.value.code == "impersonation_read_only"


def test_account_security_refused_under_any_impersonation() -> None:
    p = Principal(kind="user", user_id=B, impersonator_id=A)
    with pytest.raises(PermissionDenied) as exc:
        require_session(p, "change the password")
    assert exc.value.code == "impersonation_restricted"
    require_session(Principal(kind="user", user_id=B), "change the password")  # the user's own session may
