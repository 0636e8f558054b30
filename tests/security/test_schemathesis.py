"""Schemathesis over the whole API: generated requests against the OpenAPI contract.

Every operation gets a bounded number of generated requests (valid and invalid, boundary
values included) as a superadmin; each answer must be documented (status, content type,
schema), never a 5xx, and a schema-valid request is never refused for its shape. A stateful
run then follows the links between operations with two tenant admins as peers, so
schemathesis' object-level authorization check (ST402) replays one tenant's reads as the other.
SQLite only: the contract is the same on PostgreSQL, and both backends' answers to bad input
are asserted by test_bad_input.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance
from schemathesis.wfc.escalation import escalating_provider

from tenantry.api.app import create_app
from tenantry.authz import system_principal
from tenantry.config import load_settings
from tenantry.db.session import Database
from tenantry.services import memberships, tenants, users
from tenantry.services.context import ServiceContext
from tests.backends import selected
from tests.personas import PASSWORD, login_token

pytestmark = pytest.mark.skipif(
    selected() == "postgres", reason="the contract does not depend on the database; run on SQLite"
)

EXAMPLES = 8  # per operation: keeps the whole run within a few minutes on SQLite
PEERS = ("acme_admin", "globex_admin")
# Operations that end the caller's own session(s): generated calls would sign the run out.
SESSION_ENDERS = {("POST", "/api/v1/auth/logout"), ("DELETE", "/api/v1/me/sessions")}
# Refusals made from the request's shape alone: the contract must predict every one of them.
SHAPE_CODES = {"validation_error", "malformed_json", "unknown_parameter", "bad_request"}
# Derandomized: the same requests every run, so CI fails only when the API changes.
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)


def _not_session_ender(ctx: Any) -> bool:
    return (ctx.operation.method.upper(), ctx.operation.path) in SESSION_ENDERS


@dataclass
class World:
    """Two tenants, each with an admin, and a superadmin: all the contract run needs."""

    tokens: dict[str, str]


@pytest.fixture
def world(clean_db: Database) -> World:
    with clean_db.unit_of_work() as s:
        ctx = ServiceContext(session=s, principal=system_principal("tests"))
        users.create_user(ctx, email="superadmin@example.com", password=PASSWORD, is_superadmin=True)
        for slug in ("acme", "globex"):
            tenant = tenants.create_tenant(ctx, slug=slug, name=slug.title())
            admin = users.create_user(ctx, email=f"{slug}.admin@example.com", password=PASSWORD)
            memberships.add_member(ctx, tenant, user=admin, role="tenant_admin")
    return World(
        tokens={
            "superadmin": login_token(clean_db, "superadmin@example.com"),
            **{
                f"{slug}_admin": login_token(clean_db, f"{slug}.admin@example.com")
                for slug in ("acme", "globex")
            },
        }
    )


def shape_refusals_match_the_contract(ctx: Any, response: Any, case: Any) -> bool | None:
    """A schema-valid request may be refused for what it means (an unknown role, an expired link:
    422 with that rule's own code), never for its shape: that would be a rule the OpenAPI hides.

    Used instead of schemathesis' `positive_data_acceptance`, which counts both kinds.
    """
    if (
        case.meta is None
        or not case.meta.generation.mode.is_positive
        or response.status_code not in (400, 422)
    ):
        return None
    body = response.json() if "json" in response.headers.get("content-type", [""])[0] else None
    code = body.get("code") if isinstance(body, dict) else None
    if code is None or code in SHAPE_CODES:
        raise AssertionError(
            f"schema-valid request refused as {response.status_code} {code}: {response.text[:300]}"
        )
    return None


def shape_refusals_outside_links_match_the_contract(ctx: Any, response: Any, case: Any) -> bool | None:
    """The same for the stateful run, minus path parameters: a link schemathesis infers may fill
    one with a value the earlier response did not have (`.../assignments/None`); that is the
    link's guess, not a request the contract calls valid."""
    if response.status_code == 422 and "json" in response.headers.get("content-type", [""])[0]:
        errors = (response.json() or {}).get("errors") or []
        if errors and all(str(e.get("field", "")).startswith("path.") for e in errors):
            return None
    return shape_refusals_match_the_contract(ctx, response, case)


# The contract, read once; each test points it at its own app (fresh database).
schema = schemathesis.openapi.from_dict(
    create_app(load_settings(database_url="sqlite:///unused-contract-only.db")).openapi()
).exclude(func=_not_session_ender)


@schema.parametrize()
@SETTINGS
def test_every_operation_conforms_to_the_contract(case: Any, app: FastAPI, world: World) -> None:
    case.operation.app = case.operation.schema.app = app  # requests and the checks' probes
    case.call_and_validate(
        headers={"Authorization": f"Bearer {world.tokens['superadmin']}"},
        excluded_checks=[positive_data_acceptance],
        additional_checks=[shape_refusals_match_the_contract],
    )


def _peers_config(tmp_path: Path, world: World) -> SchemathesisConfig:
    identities = {
        "schemaVersion": "1.0.0",
        "auth": [
            {
                "name": name,
                "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {world.tokens[name]}"}],
            }
            for name in PEERS
        ],
    }
    path = tmp_path / "users.wfc.json"
    path.write_text(json.dumps(identities))
    return SchemathesisConfig.from_dict(
        {
            "auth": {"wfc": {"path": str(path), "peers": list(PEERS)}},
            "checks": {"positive_data_acceptance": {"enabled": False}},  # replaced by ours, as above
        }
    )


def test_stateful_run_with_two_tenants_as_peers(app: FastAPI, world: World, tmp_path: Path) -> None:
    peer_schema = schemathesis.openapi.from_asgi(
        "/api/v1/openapi.json", app, config=_peers_config(tmp_path, world)
    ).exclude(func=_not_session_ender)
    provider = escalating_provider(peer_schema)
    assert provider is not None and set(provider.peers) == set(PEERS)  # ST402 really compares the two

    class Workflow(peer_schema.as_state_machine()):  # type: ignore[misc]
        def validate_response(self, response: Any, case: Any, *_a: Any, **kwargs: Any) -> None:
            super().validate_response(
                response, case, additional_checks=[shape_refusals_outside_links_match_the_contract], **kwargs
            )

    Workflow.run(
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
