"""Errors as RFC 9457 problem details (application/problem+json) with a stable `type`.

Every typed domain error, validation error, unknown route and unexpected exception leaves the
API in this one shape. `document_problems` rewrites the OpenAPI document so that each error
response is declared as problem+json with the `Problem` schema.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException

from control.schemas.common import Problem
from control.schemas.validators import PATTERN_HINTS
from control.services.errors import DomainError, Throttled

log = logging.getLogger(__name__)
TYPE_PREFIX = "urn:kokoa:problem:"
MEDIA_TYPE = "application/problem+json"
HTTP_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthenticated", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    413: ("too-large", "Request too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


class ProblemResponse(JSONResponse):
    media_type = MEDIA_TYPE


def problem(
    request: Request, status: int, slug: str, title: str, detail: str, **extra: Any
) -> ProblemResponse:
    body = Problem(
        type=TYPE_PREFIX + slug,
        title=title,
        status=status,
        detail=detail,
        instance=request.url.path,
        **extra,
    )
    return ProblemResponse(body.model_dump(exclude_none=True), status_code=status)


async def _domain(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, DomainError)
    response = problem(request, exc.status, exc.slug, exc.title, exc.detail)
    if isinstance(exc, Throttled):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _validation(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": _message(err),
            "type": str(err.get("type", "")),
        }
        for err in exc.errors()
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    detail = f"{'.'.join(first['loc'])}: {first['msg']}" if first["loc"] else str(first["msg"])
    return problem(request, 422, "validation-error", "Invalid request", detail, errors=errors)


def _message(err: dict[str, Any]) -> str:
    if err.get("type") == "string_pattern_mismatch":
        hint = PATTERN_HINTS.get(str(err.get("ctx", {}).get("pattern")))
        if hint:
            return f"expected {hint}"
    return str(err.get("msg", ""))


async def _http(request: Request, exc: Exception) -> ProblemResponse:
    assert isinstance(exc, HTTPException)
    slug, title = HTTP_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
    response = problem(request, exc.status_code, slug, title, str(exc.detail))
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _integrity(request: Request, exc: Exception) -> ProblemResponse:
    log.info("integrity error mapped to 409", extra={"path": request.url.path, "error": str(exc)})
    return problem(
        request,
        409,
        "conflict",
        "Conflicts with the current state",
        "a concurrent change conflicts with this one; reload and retry",
    )


async def _unexpected(request: Request, exc: Exception) -> ProblemResponse:
    log.exception("unhandled error", extra={"path": request.url.path}, exc_info=exc)
    return problem(
        request,
        500,
        "internal-error",
        "Internal error",
        "the server failed; the details are in its log",
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(IntegrityError, _integrity)
    app.add_exception_handler(Exception, _unexpected)


ERROR_DESCRIPTIONS = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Not allowed (role, CSRF, sign-up closed)",
    404: "Not found (or not in your organisation)",
    409: "Conflict with the current state",
    422: "Invalid request",
    429: "Too many attempts",
}


def error_responses() -> dict[int | str, dict[str, Any]]:
    """The `responses=` every router declares: each error status as a Problem."""
    return {s: {"model": Problem, "description": d} for s, d in ERROR_DESCRIPTIONS.items()}


def document_problems(schema: dict[str, Any]) -> dict[str, Any]:
    """Declare every 4xx/5xx response of `schema` as application/problem+json."""
    ref = {"$ref": "#/components/schemas/Problem"}
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            for status, response in operation.get("responses", {}).items():
                if status[0] in "45":
                    response["content"] = {MEDIA_TYPE: {"schema": ref}}
    return schema
