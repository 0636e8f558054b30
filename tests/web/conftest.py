"""Console test helpers: sign a persona in through the login form, post forms with its CSRF token."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tenantry.api.deps import CSRF_COOKIE
from tests.personas import PASSWORD, Personas


class Browser:
    """A TestClient that keeps cookies like a browser and never follows redirects on its own."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def sign_in(self, email: str, password: str = PASSWORD, totp_code: str | None = None) -> None:
        data = {"email": email, "password": password}
        if totp_code:
            data["totp_code"] = totp_code
        r = self.client.post("/login", data=data, follow_redirects=False)
        assert r.status_code == 303, r.text

    @property
    def csrf(self) -> str:
        return self.client.cookies.get(CSRF_COOKIE) or ""

    def get(self, path: str):  # noqa: ANN201
        return self.client.get(path, follow_redirects=False)

    def post(self, path: str, data: dict[str, str] | None = None, *, csrf: bool = True):  # noqa: ANN201
        body = dict(data or {})
        if csrf:
            body["csrf_token"] = self.csrf
        return self.client.post(path, data=body, follow_redirects=False)


@pytest.fixture
def browser(app, personas: Personas) -> Callable[[str | None], Browser]:  # noqa: ANN001
    """`browser("acme_admin")`: a fresh client signed in as that persona through /login."""

    def make(persona: str | None) -> Browser:
        b = Browser(TestClient(app))
        if persona is not None:
            b.sign_in(personas.users[persona].email)
        return b

    return make
