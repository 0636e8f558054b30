"""The route class every API router uses: strict JSON and no unknown query parameters.

Both checks live here once instead of in every handler:

- A JSON body is parsed without `NaN`/`Infinity` (not JSON numbers per RFC 8259; Python's
  parser accepts them, and a stored NaN breaks every attribute filter of the tenant).
- A query parameter the route does not declare is a 422 `unknown_parameter`, never silently
  ignored (`GET /users?q=x` must not answer "everyone"). Routes with open-ended filters
  declare the accepted prefixes in `openapi_extra={"x-query-prefixes": ["attr."]}`.
- Query values with control characters are a 422 `invalid_character`, and a path naming
  an object with them is a 404 (NUL cannot even reach PostgreSQL as a parameter).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from tenantry.errors import Invalid, NotFound

QUERY_PREFIXES = "x-query-prefixes"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _refuse_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not a JSON number", name, 0)


class StrictJsonRequest(Request):
    """`request.json()` that refuses the non-standard constants NaN, Infinity and -Infinity."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json.loads(await self.body(), parse_constant=_refuse_constant)
        return self._json


def declared_query_params(dependant: Dependant) -> frozenset[str]:
    """Names (aliases) of every query parameter of the route, its dependencies included."""
    names: set[str] = set()
    stack = [dependant]
    while stack:
        current = stack.pop()
        names.update(field.alias for field in current.query_params)
        stack.extend(current.dependencies)
    return frozenset(names)


class ApiRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        allowed = declared_query_params(self.dependant)
        prefixes = tuple((self.openapi_extra or {}).get(QUERY_PREFIXES, ()))

        async def strict_handler(request: Request) -> Response:
            for key, value in request.query_params.multi_items():
                if key not in allowed and not (prefixes and key.startswith(prefixes)):
                    raise Invalid(f"unknown query parameter {key!r}", code="unknown_parameter", field=key)
                if _CONTROL.search(key) or _CONTROL.search(value):
                    raise Invalid("control characters in the query", code="invalid_character", field=key)
            for value in request.path_params.values():
                if isinstance(value, str) and _CONTROL.search(value):
                    raise NotFound("object")  # no object is named like that (and none may be)
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict_handler


def api_router(**kwargs: Any) -> APIRouter:
    """An `APIRouter` whose routes are `ApiRoute`s (use this for every API router)."""
    return APIRouter(route_class=ApiRoute, **kwargs)
