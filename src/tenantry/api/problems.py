"""RFC 9457 problem+json for every error, with a stable machine `code`."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm.exc import StaleDataError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from tenantry import errors, i18n
from tenantry.api.deps import request_language, request_meta
from tenantry.authz.engine import AuthzDenied, mark_decided
from tenantry.db import availability
from tenantry.services import audit

STATUS = {
    errors.NotFound: 404,
    errors.Unauthenticated: 401,
    errors.PermissionDenied: 403,
    errors.Conflict: 409,
    errors.Invalid: 422,
    errors.PreconditionFailed: 412,
    errors.PreconditionRequired: 428,
    errors.RateLimited: 429,
    errors.RiskNotAcknowledged: 409,
}
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}
_FASTAPI_BODY_PARSE_ERROR = "There was an error parsing the body"
log = logging.getLogger("tenantry.http")


# What every operation may answer with a problem; documented once for the whole API.
DOCUMENTED = {
    400: "Unreadable request",
    401: "Not signed in (missing, unknown or expired token)",
    403: "Not allowed",
    404: "Not found (or not visible to the caller)",
    409: "Conflict with the current state",
    412: "If-Match does not match the current version",
    413: "Request body too large",
    422: "Invalid input",
    428: "If-Match required",
    429: "Too many requests",
    500: "Unexpected error (quote the request id)",
    503: "Database unavailable or read-only for now (retry after Retry-After); not ready (probe)",
}


def openapi_responses() -> dict[int | str, dict[str, Any]]:
    """The app-wide `responses=`: every documented error status with the Problem schema."""
    from tenantry.api.schemas import Problem

    return {status: {"description": text, "model": Problem} for status, text in DOCUMENTED.items()}


def _problems_as_problem_json(app: FastAPI) -> None:
    """Document error bodies as `application/problem+json`, the type they are served with."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        for item in schema.get("paths", {}).values():
            for operation in item.values():
                if not isinstance(operation, dict):
                    continue
                for status, response in (operation.get("responses") or {}).items():
                    content = response.get("content") or {}
                    if str(status)[:1] in "45" and "application/json" in content:
                        content["application/problem+json"] = content.pop("application/json")
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def problem(
    status: int, code: str, detail: str, title: str | None = None, *, language: str = "en", **extra: Any
) -> JSONResponse:
    """`detail` is translated into `language` (the catalog's text); `code` never is."""
    body = {
        "type": f"urn:tenantry:problem:{code}",
        "title": title or code.replace("_", " ").capitalize(),
        "status": status,
        "detail": i18n.translate_detail(detail, language),
        "code": code,
        **extra,
    }
    headers = {"Content-Language": language}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def status_for(exc: errors.DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def _jsonable(extra: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (v if isinstance(v, str | int | float | bool | list | dict | type(None)) else str(v))
        for k, v in extra.items()
    }


def _methods_on(routes: list[Any], path: str) -> set[str]:
    """Every documented method some route serves at `path` (also inside included routers)."""
    methods: set[str] = set()
    for route in routes:
        original = getattr(route, "original_router", None)
        if original is not None:
            methods |= _methods_on(original.routes, path)
        elif (
            getattr(route, "include_in_schema", True)  # hidden routes only refuse; not advertised
            and getattr(route, "path_regex", None) is not None
            and route.path_regex.match(path)
        ):
            methods |= set(getattr(route, "methods", None) or ())
    return methods


def install(app: FastAPI) -> None:
    _problems_as_problem_json(app)

    @app.exception_handler(errors.DomainError)
    async def _domain(request: Request, exc: errors.DomainError) -> JSONResponse:
        resp = problem(
            status_for(exc),
            exc.code,
            exc.detail,
            exc.title,
            language=request_language(request),
            **_jsonable(exc.extra),
        )
        if isinstance(exc, errors.RateLimited):
            resp.headers["Retry-After"] = str(exc.retry_after)
        return resp

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        mark_decided("invalid_request")  # refused before any route code ran
        problems = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p != "body"]
            problems.append(
                {"field": ".".join(loc), "message": err.get("msg", ""), "type": err.get("type", "")}
            )
        invalid_json = [e for e in exc.errors() if e.get("type") == "json_invalid"]
        if invalid_json:
            reason = (invalid_json[0].get("ctx") or {}).get("error")
            detail = "the request body is not valid JSON" + (f": {reason}" if reason else "")
            return problem(422, "malformed_json", detail, errors=problems)
        if problems and all(p["field"] == "query.cursor" for p in problems):
            # Too long or otherwise unusable: the same answer as any cursor we did not issue.
            return problem(422, "invalid_cursor", "cursor is not valid", errors=problems)
        names = ", ".join(p["field"] or "body" for p in problems)
        return problem(
            422,
            "validation_error",
            f"invalid input: {names}",
            errors=problems,
            language=request_language(request),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == _FASTAPI_BODY_PARSE_ERROR:
            # FastAPI's answer to a body it cannot decode at all (e.g. not UTF-8): the same
            # client mistake as any other unreadable JSON, so the same status and code.
            return problem(422, "malformed_json", "the request body is not valid JSON")
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        resp = problem(exc.status_code, code, str(exc.detail), language=request_language(request))
        for k, v in (exc.headers or {}).items():
            resp.headers[k] = v
        if exc.status_code == 405:
            # Starlette names the methods of the first route on the path only; a client needs all.
            resp.headers["Allow"] = ", ".join(sorted(_methods_on(request.app.routes, request.url.path)))
        return resp

    @app.exception_handler(StaleDataError)
    async def _stale(request: Request, _exc: StaleDataError) -> JSONResponse:
        # Another request changed the row between our read and our write (optimistic locking).
        if request.headers.get("if-match"):
            # The client's precondition no longer holds: exactly what 412 says.
            return problem(412, "etag_mismatch", "the object was changed meanwhile; fetch it again")
        return problem(
            409, "concurrent_update", "the object was changed by another request at the same time; retry"
        )

    @app.exception_handler(DBAPIError)
    async def _database(request: Request, exc: DBAPIError) -> JSONResponse:
        """The database is down, restarting or refusing writes: 503, never a 500 page."""
        code = availability.classify(exc)
        if code is None:
            raise exc  # a bug, not an outage: the 500 handler below answers (and logs) it
        log.warning(
            "database error answered 503",
            extra={"fields": {"code": code, "error": type(exc.orig).__name__, "path": request.url.path}},
        )
        if code == "database_read_only":
            detail = "the database accepts no changes right now (read-only or out of space); reads work"
        else:
            detail = "the database is not reachable right now; retry shortly"
        resp = problem(503, code, detail, title="Service unavailable")
        resp.headers["Retry-After"] = "5" if code == "database_unavailable" else "60"
        rid = getattr(request.state, "request_id", None)
        if rid:
            resp.headers["X-Request-ID"] = rid
        return resp

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        """Anything unforeseen: problem+json with the request id, never a plain-text page.

        Starlette's outermost error middleware calls this (and re-raises for the server's log),
        outside the request-id middleware, hence the id is taken from the request state here.
        """
        rid = getattr(request.state, "request_id", None)
        log.error(
            "unhandled error",
            exc_info=exc,
            extra={"fields": {"method": request.method, "path": request.url.path, "request_id": rid}},
        )
        resp = problem(
            500,
            "internal_error",
            "an unexpected error occurred; quote the request id when reporting it",
            title="Internal server error",
            request_id=rid,
        )
        if rid:
            resp.headers["X-Request-ID"] = rid
        return resp

    install_denial_trace(app)


def install_denial_trace(app: FastAPI) -> None:
    """The engine's refusals (not CSRF, not 2FA set-up, …) leave an `authz.denied` audit event.

    The handler runs after the request's session was closed (its transaction rolled back),
    writes the event through the audit service in a transaction of its own, and then answers
    exactly as the DomainError handler does.
    """
    answer = app.exception_handlers[errors.DomainError]

    @app.exception_handler(AuthzDenied)
    async def _denied(request: Request, exc: AuthzDenied) -> Any:
        meta = request_meta(request)
        await run_in_threadpool(audit.record_denial, request.app.state.db, exc.denial, meta, reason=exc.code)
        return await answer(request, exc)  # type: ignore[misc]
