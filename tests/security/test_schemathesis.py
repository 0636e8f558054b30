"""Schemathesis over the whole API: generated requests against the OpenAPI contract.

Every operation gets a bounded number of generated requests (valid and invalid) as a
superadmin; each answer must be documented (status, content type, schema) and never a 5xx.
A stateful run then follows the links between operations with two tenant admins as peers, so
schemathesis' object-level authorization check (ST402) replays one tenant's reads as the other.
SQLite only: the contract is the same on PostgreSQL, and both backends' behaviour under bad
input is asserted by test_bad_input.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tenantry.api.app import create_app
from tenantry.config import load_settings
from tests.backends import selected
from tests.personas import Personas

pytestmark = pytest.mark.skipif(
    selected() == "postgres", reason="the contract does not depend on the database; run on SQLite"
)

EXAMPLES = 10  # per operation and phase: keeps the whole run within a few minutes on SQLite
PEERS = ("acme_admin", "globex_admin")
# Operations that end the caller's own session(s): generated calls would sign the run out.
SESSION_ENDERS = {("POST", "/api/v1/auth/logout"), ("DELETE", "/api/v1/me/sessions")}


def _config(tmp_path: Path, personas: Personas) -> SchemathesisConfig:
    users = {
        "schemaVersion": "1.0.0",
        "auth": [
            {
                "name": name,
                "fixedHeaders": [{"name": "Authorization", "value": f"Bearer {personas.tokens[name]}"}],
            }
            for name in PEERS
        ],
    }
    path = tmp_path / "users.wfc.json"
    path.write_text(json.dumps(users))
    return SchemathesisConfig.from_dict({"auth": {"wfc": {"path": str(path), "peers": list(PEERS)}}})


@pytest.fixture
def peer_schema(app: FastAPI, personas: Personas, tmp_path: Path) -> Any:
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app, config=_config(tmp_path, personas))
    return schema.exclude(
        func=lambda ctx: (ctx.operation.method.upper(), ctx.operation.path) in SESSION_ENDERS
    )


# The contract, read once from an app that is never called; each test calls its own app.
schema = schemathesis.openapi.from_dict(
    create_app(load_settings(database_url="sqlite:///unused-contract-only.db")).openapi()
).exclude(func=lambda ctx: (ctx.operation.method.upper(), ctx.operation.path) in SESSION_ENDERS)


# Refusals the framework makes from the request's shape: the contract must predict them.
FRAMEWORK_CODES = {"validation_error", "malformed_json", "unknown_parameter", "bad_request"}


@schemathesis.check
def shape_refusals_match_the_contract(ctx: Any, response: Any, case: Any) -> bool | None:
    """A schema-valid request may be refused for what it means (an unknown role, an expired link:
    422 with that rule's own code), never for its shape: that would be a rule the OpenAPI hides.

    Used instead of schemathesis' `positive_data_acceptance`, which also counts the first kind.
    """
    if (
        case.meta is None
        or not case.meta.generation.mode.is_positive
        or response.status_code not in (400, 422)
    ):
        return None
    code = (
        (response.json() or {}).get("code")
        if "json" in response.headers.get("content-type", [""])[0]
        else None
    )
    if code in FRAMEWORK_CODES or code is None:
        raise AssertionError(
            f"schema-valid request refused as {response.status_code} {code}: {response.text[:300]}"
        )
    return None


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_conforms_to_the_contract(case: Any, app: FastAPI, personas: Personas) -> None:
    case.call_and_validate(
        app=app,
        headers={"Authorization": f"Bearer {personas.tokens['superadmin']}"},
        excluded_checks=[positive_data_acceptance],
        additional_checks=[shape_refusals_match_the_contract],
    )


def test_stateful_run_with_two_tenants_as_peers(peer_schema: Any) -> None:
    machine = peer_schema.as_state_machine()
    machine.run(
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=6,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
    )
