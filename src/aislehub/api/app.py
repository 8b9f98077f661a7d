"""Assemble the FastAPI application from the routers (contract §1, §2)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI

from aislehub.api.deps import ApiContext, require_api_version
from aislehub.api.handlers import RequestIdMiddleware, exception_handlers
from aislehub.api.routes import (
    alerts,
    api_tokens,
    attestation,
    commands,
    components,
    dashboards,
    device_groups,
    device_status,
    device_templates,
    devices,
    enrollment,
    explorer,
    jobs,
    messages,
    ops,
    properties,
    query,
    rules,
    scheduled_jobs,
    telemetry,
    users,
)
from aislehub.web import install_web

_RESOURCES = (
    devices,
    device_status,
    attestation,
    properties,
    components,
    commands,
    telemetry,
    messages,
    device_templates,
    device_groups,
    enrollment,
    api_tokens,
    jobs,
    scheduled_jobs,
    query,
    explorer,
    dashboards,
    users,
)

DESCRIPTION = """\
Azure IoT Central's data-plane REST API (GA `2022-07-31`): point an existing script at this
server's `/api` and give it an aislehub API token. Every `/api` call needs `?api-version=`;
every error is `{"error": {"code", "message", "requestId", "time"}}`.
"""


# IoT Central's `Error` schema (contract §1.5): every operation's `default` response.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "requestId": {"type": "string"},
                "time": {"type": "string"},
            },
        }
    },
}


class _Api(FastAPI):
    """FastAPI whose OpenAPI documents our error shape instead of FastAPI's 422 body."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            schema = super().openapi()
            error = {
                "description": "Error",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
            for operations in schema["paths"].values():
                for operation in operations.values():
                    operation["responses"].pop("422", None)
                    operation["responses"]["default"] = error
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
            schemas["Error"] = ERROR_SCHEMA
        return self.openapi_schema or {}


def create_api(ctx: ApiContext) -> FastAPI:
    """The HTTP API of one aislehub server; ``/docs`` and ``/openapi.json`` describe it."""
    app = _Api(
        title="aislehub",
        version="2022-07-31",
        description=DESCRIPTION,
        exception_handlers=exception_handlers(),
    )
    app.state.ctx = ctx
    app.add_middleware(RequestIdMiddleware)
    # A body without Content-Type is read as JSON: plenty of scripts forget the header.
    api = APIRouter(
        prefix="/api", dependencies=[Depends(require_api_version)], strict_content_type=False
    )
    for module in (*_RESOURCES, rules, alerts):  # ours: rules and their alerts
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(ops.router)
    install_web(app)
    return app
