"""RFC 9457 problem+json for every error, with a stable machine `code`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from tenantry import errors
from tenantry.api.deps import request_meta
from tenantry.authz.engine import AuthzDenied, mark_decided
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


def problem(status: int, code: str, detail: str, title: str | None = None, **extra: Any) -> JSONResponse:
    body = {
        "type": f"urn:tenantry:problem:{code}",
        "title": title or code.replace("_", " ").capitalize(),
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def status_for(exc: errors.DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]  # type: ignore[index]
    return 400


def _jsonable(extra: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (v if isinstance(v, str | int | float | bool | list | dict | type(None)) else str(v))
        for k, v in extra.items()
    }


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.DomainError)
    async def _domain(_request: Request, exc: errors.DomainError) -> JSONResponse:
        resp = problem(status_for(exc), exc.code, exc.detail, exc.title, **_jsonable(exc.extra))
        if isinstance(exc, errors.RateLimited):
            resp.headers["Retry-After"] = str(exc.retry_after)
        return resp

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        mark_decided("invalid_request")  # refused before any route code ran
        problems = []
        for err in exc.errors():
            loc = [str(p) for p in err.get("loc", ()) if p != "body"]
            problems.append(
                {"field": ".".join(loc), "message": err.get("msg", ""), "type": err.get("type", "")}
            )
        if any(p["type"] == "json_invalid" for p in problems):
            return problem(422, "malformed_json", "the request body is not valid JSON", errors=problems)
        names = ", ".join(p["field"] or "body" for p in problems)
        return problem(422, "validation_error", f"invalid input: {names}", errors=problems)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == _FASTAPI_BODY_PARSE_ERROR:
            # FastAPI's answer to a body it cannot decode at all (e.g. not UTF-8): the same
            # client mistake as any other unreadable JSON, so the same status and code.
            return problem(422, "malformed_json", "the request body is not valid JSON")
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        resp = problem(exc.status_code, code, str(exc.detail))
        for k, v in (exc.headers or {}).items():
            resp.headers[k] = v
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
        return await answer(request, exc)
