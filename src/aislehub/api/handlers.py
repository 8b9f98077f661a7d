"""One error shape for the whole API: IoT Central's ``{"error": {...}}`` (contract §1.5).

Every failure (our ``ApiError`` tree, FastAPI's request validation, unknown routes, wrong
methods, our own bugs) leaves through :func:`error_response`, so the body, the
``x-ms-error-code`` header and the ``api_errors_total`` counter can never disagree.

Status rule: 400 = the request is malformed (bad JSON, wrong types, missing or out-of-range
fields, bad ids, bad query parameters); 422 = well-formed but refused by a domain rule
(an unsupported attestation type, an expiry in the past).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import psycopg
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aislehub.errors import ApiError
from aislehub.metrics import Metrics

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "x-ms-request-id"

_HTTP_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    422: "ValidationFailed",
    429: "TooManyRequests",
}


class RequestIdMiddleware:
    """Give every request a uuid4 id, in ``request.state`` and the ``x-ms-request-id`` header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != b"x-ms-request-id"]
                message["headers"] = [*headers, (b"x-ms-request-id", request_id.encode())]
            await send(message)

        await self.app(scope, receive, send_with_id)


def request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", None) or uuid.uuid4())


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    rid = request_id(request)
    metrics: Metrics = request.app.state.ctx.metrics
    metrics.inc("api_errors_total", code=code)
    body = {
        "error": {
            "code": code,
            "message": message,
            "requestId": rid,
            "time": format_datetime(datetime.now(UTC), usegmt=True),
        }
    }
    all_headers = {**(headers or {}), "x-ms-error-code": code, REQUEST_ID_HEADER: rid}
    return JSONResponse(body, status_code=status, headers=all_headers)


def describe_errors(errors: Sequence[Mapping[str, Any]]) -> str:
    """Pydantic/FastAPI errors as one precise sentence: ``where: what; where: what``."""
    parts = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        where = ".".join(loc) if loc else "body"
        parts.append(f"{where}: {_message(err)}")
    return "Invalid request: " + "; ".join(parts) + "."


def _message(err: Mapping[str, Any]) -> str:
    if err.get("type") == "json_invalid":
        detail = (err.get("ctx") or {}).get("error", "")
        return f"the body is not valid JSON ({detail})"
    if isinstance(err.get("input"), bytes | bytearray) and tuple(err.get("loc", ())) == ("body",):
        return "the body must be JSON sent as application/json or application/merge-patch+json"
    return str(err.get("msg", "invalid value"))


async def _api_error(request: Request, exc: ApiError) -> Response:
    return error_response(request, exc.status, exc.code, exc.message)


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    return error_response(request, 400, "BadRequest", describe_errors(exc.errors()))


async def _http_error(request: Request, exc: HTTPException) -> Response:
    code = _HTTP_CODES.get(exc.status_code, "Error")
    if exc.status_code == 404:
        message = f"No resource at {request.url.path}."
    elif exc.status_code == 405:
        message = f"Method {request.method} is not allowed on {request.url.path}."
    else:
        message = str(exc.detail)
    return error_response(request, exc.status_code, code, message, exc.headers)


async def _store_down(request: Request, exc: psycopg.OperationalError) -> Response:
    """A PostgreSQL store that cannot be reached (e.g. a tenant cell's database is down)."""
    log.warning("store unavailable in %s %s: %s", request.method, request.url.path, exc)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    message = f"The telemetry store is unavailable, try again later ({first})."
    return error_response(request, 503, "ServiceUnavailable", message)


async def _unhandled(request: Request, exc: Exception) -> Response:
    rid = request_id(request)
    log.error(
        "unhandled error in %s %s (request %s)", request.method, request.url.path, rid, exc_info=exc
    )
    message = f"An internal error occurred; quote request id {rid} when reporting it."
    return error_response(request, 500, "InternalServerError", message)


Handler = Callable[[Request, Any], Coroutine[Any, Any, Response]]


def exception_handlers() -> dict[int | type[Exception], Handler]:
    """For ``FastAPI(exception_handlers=...)``; ``Exception`` catches our own bugs (→ 500)."""
    return {
        ApiError: _api_error,
        RequestValidationError: _validation_error,
        HTTPException: _http_error,
        psycopg.OperationalError: _store_down,
        Exception: _unhandled,
    }
