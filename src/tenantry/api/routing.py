"""The route class every API router uses: strict JSON and no unknown query parameters.

Both checks live here once instead of in every handler:

- A JSON body is parsed without `NaN`/`Infinity` (not JSON numbers per RFC 8259; Python's
  parser accepts them, and a stored NaN breaks every attribute filter of the tenant).
- A query parameter the route does not declare is a 422 `unknown_parameter`, never silently
  ignored (`GET /users?q=x` must not answer "everyone"). Routes with open-ended filters
  declare the accepted prefixes in `openapi_extra={"x-query-prefixes": ["attr."]}`.
- Query values with control characters are a 422 `invalid_character`, and a path naming
  an object with them is a 404 (NUL cannot even reach PostgreSQL as a parameter).
- A synchronous endpoint costs **one** thread-pool hop: the dependencies only record their
  blocking work (`RequestWork`), which runs in the endpoint's thread before it, and the
  sessions they opened are closed there after it. Profiling showed each hop (loop wake-up,
  queue, anyio) costing more CPU than the query it carried; FastAPI gives every sync
  dependency, the endpoint and the response validation a hop of their own.
- A read (GET/HEAD) whose database connection broke (server restarted, connection dropped) is
  run once more on a fresh connection (`db/availability.py` says which errors qualify); a
  write is not repeated and answers 503 `database_unavailable` (api/problems.py).
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from tenantry.db.availability import RETRY_PAUSE_SECONDS, connection_lost
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


@dataclass
class RequestWork:
    """What the dependencies left for the route's thread: preparation steps, sessions to close."""

    steps: list[Callable[[], object]] = field(default_factory=list)
    sessions: list[Session] = field(default_factory=list)
    idempotent: bool = False

    def prepare(self) -> None:
        while self.steps:
            self.steps.pop(0)()

    def close(self) -> None:
        for session in self.sessions:
            session.close()

    def run(self, endpoint: Callable[..., Any], arguments: dict[str, Any]) -> Any:
        steps = list(self.steps)
        try:
            try:
                self.prepare()
                return endpoint(**arguments)
            except Exception as exc:
                if not (self.idempotent and connection_lost(exc)):
                    raise
            # A read on a connection that broke: the pool was invalidated, so the same sessions,
            # rolled back, begin again on fresh connections. Once; a second failure is the answer.
            for session in self.sessions:
                session.rollback()
            time.sleep(RETRY_PAUSE_SECONDS)
            self.steps = steps
            self.prepare()
            return endpoint(**arguments)
        finally:
            self.close()


_WORK = "tenantry_work"
_REQUEST = "_tenantry_request"


def request_work(request: Request) -> RequestWork:
    work: RequestWork | None = getattr(request.state, _WORK, None)
    if work is None:
        work = RequestWork(idempotent=request.method in ("GET", "HEAD"))
        setattr(request.state, _WORK, work)
    return work


def defers_work(request: Request) -> bool:
    """Whether the matched route runs the recorded work in its endpoint's thread."""
    return getattr(request.scope.get("route"), "defers_work", False) is True


async def prepare(request: Request, step: Callable[[], object]) -> None:
    """Run `step` before the endpoint: in its thread when the route defers, else right now.

    Security: a route that does not defer (a plain FastAPI route, an async endpoint) must still
    authenticate its caller before the endpoint runs; it pays a thread-pool hop for it.
    """
    if defers_work(request):
        request_work(request).steps.append(step)
    else:
        await run_in_threadpool(step)


def in_one_hop(endpoint: Callable[..., Any]) -> Callable[..., Coroutine[Any, Any, Any]]:
    """The endpoint as a coroutine that runs the request's work and the endpoint in one thread."""
    try:
        signature = inspect.signature(endpoint, eval_str=True)
    except NameError:  # names imported only for type checkers
        signature = inspect.signature(endpoint)
    # FastAPI injects the request into one parameter only: reuse the endpoint's own if it has one.
    own = next((p.name for p in signature.parameters.values() if p.annotation is Request), None)
    parameters = list(signature.parameters.values())
    if own is None:
        parameters.append(inspect.Parameter(_REQUEST, inspect.Parameter.KEYWORD_ONLY, annotation=Request))

    @functools.wraps(endpoint)
    async def one_hop(**arguments: Any) -> Any:
        request = arguments[own] if own else arguments.pop(_REQUEST)
        return await run_in_threadpool(request_work(request).run, endpoint, arguments)

    one_hop.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return one_hop


async def _finish_refused(request: Request) -> None:
    """A request refused before its endpoint still answers who-are-you and which-tenant first.

    Bad input found by FastAPI (422) must not tell an unauthenticated caller more than a 401
    would, nor a caller outside the tenant more than its 404.
    """
    work: RequestWork | None = getattr(request.state, _WORK, None)
    if work is None or not (work.steps or work.sessions):
        return

    def prepare_then_close() -> None:
        try:
            work.prepare()
        finally:
            work.close()

    await run_in_threadpool(prepare_then_close)


class ApiRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        self.defers_work = not inspect.iscoroutinefunction(endpoint)
        if self.defers_work:
            endpoint = in_one_hop(endpoint)
        super().__init__(path, endpoint, **kwargs)

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
            try:
                return await handler(StrictJsonRequest(request.scope, request.receive))
            except RequestValidationError:
                await _finish_refused(request)
                raise

        return strict_handler


def api_router(**kwargs: Any) -> APIRouter:
    """An `APIRouter` whose routes are `ApiRoute`s (use this for every API router)."""
    return APIRouter(route_class=ApiRoute, **kwargs)
