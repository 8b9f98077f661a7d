"""What every endpoint depends on: the context, the api-version, the caller and path ids.

FastAPI resolves these per request, in this order: ``require_api_version`` (router-wide),
then ``current_caller`` (token → app), then the validated path ids. The app of every
query is the caller's token's app (contract §1.4); nothing in a body or a host name can
widen it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol, cast

from fastapi import Body, Depends, Header, Path, Query, Request
from fastapi.security import APIKeyHeader

from aislehub.api.tokens import authenticate
from aislehub.errors import BadRequest, NotFound
from aislehub.hub.hub import DeviceHub
from aislehub.hub.links import Key
from aislehub.hub.templates import CompiledTemplate, is_template_id
from aislehub.metrics import Metrics
from aislehub.store.metadata import ApiToken, App, Device, MetadataStore
from aislehub.store.telemetry import UnmodeledField

# Published data-plane versions (contract §1.2, S18): GA first, then previews.
API_VERSIONS = (
    "2022-07-31",
    "2022-05-31",
    "1.0",
    "2022-10-31-preview",
    "2022-06-30-preview",
    "1.2-preview",
    "1.1-preview",
)

# IoT Hub device-id rules: a safe superset of IoT Central's (contract §1.10).
_DEVICE_ID = re.compile(r"[A-Za-z0-9\-.%_*?!(),:=@$']{1,128}")
_TEMPLATE_ID_MAX = 512  # the devices.template and device_templates.id column width


class TelemetryReader(Protocol):
    """The telemetry store's reads the API uses."""

    def latest(
        self,
        app_id: str,
        device_id: str,
        name: str,
        component: str | None = None,
        module_id: str | None = None,
    ) -> tuple[Any, datetime] | None: ...

    def range(
        self,
        app_id: str,
        device_id: str,
        name: str,
        start: datetime,
        end: datetime,
        limit: int,
        component: str | None = None,
        module_id: str | None = None,
    ) -> list[tuple[datetime, Any]]: ...

    def unmodeled(self, app_id: str, device_id: str) -> list[UnmodeledField]: ...

    def query(self, sql: str, params: list[Any]) -> tuple[list[str], list[tuple[Any, ...]]]:
        """One read-only SQL statement in the store's dialect: column names and rows."""
        ...


def own_id_scope(app: App) -> str:
    return app.id_scope


@dataclass(slots=True, kw_only=True)
class ApiContext:
    """Everything the API needs from the rest of the process; one per server."""

    store: MetadataStore
    hub: DeviceHub
    telemetry: TelemetryReader
    metrics: Metrics
    # With tenant cells each app's telemetry lives in its cell's store (aislehub.cells).
    telemetry_for: Callable[[str], TelemetryReader] | None = None
    cell_status: Callable[[], list[dict[str, Any]]] | None = None  # for /readyz
    id_scope_for: Callable[[App], str] = own_id_scope
    # When set (e.g. behind a proxy), nextLink URLs start with it instead of the request's.
    public_base_url: str | None = None


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated request: the context plus the token that signed it."""

    ctx: ApiContext
    token: ApiToken

    @property
    def app_id(self) -> str:
        return self.token.app_id

    @property
    def telemetry(self) -> TelemetryReader:
        """The telemetry store holding the caller's app (its cell's, with tenant cells)."""
        if self.ctx.telemetry_for is None:
            return self.ctx.telemetry
        return self.ctx.telemetry_for(self.app_id)

    def key(self, device_id: str, module_id: str | None = None) -> Key:
        return (self.app_id, device_id, module_id or "")

    def device(self, device_id: str) -> Device:
        """The caller's app's device ``device_id``, or NotFound."""
        device = self.ctx.store.get_device(self.app_id, device_id)
        if device is None:
            raise NotFound(f"Device {device_id!r} was not found.")
        return device

    def template_of(self, device: Device) -> CompiledTemplate | None:
        """The parsed template of a device, or None for an unassociated device."""
        return self.ctx.hub.templates.for_device(device)


class InvalidApiVersion(BadRequest):
    code = "InvalidApiVersion"


def context(request: Request) -> ApiContext:
    return cast(ApiContext, request.app.state.ctx)


async def require_api_version(
    api_version: Annotated[
        str | None,
        Query(
            alias="api-version",
            description="Required: " + ", ".join(API_VERSIONS),
            examples=["2022-07-31"],
        ),
    ] = None,
) -> str:
    """Every ``/api`` call names a published api-version (contract §1.2)."""
    if api_version is None:
        raise InvalidApiVersion(
            "The query parameter 'api-version' is required; use api-version=2022-07-31."
        )
    if api_version not in API_VERSIONS:
        raise InvalidApiVersion(
            f"api-version {api_version!r} is not supported; use one of: "
            + ", ".join(API_VERSIONS)
            + "."
        )
    return api_version


# Declared as a security scheme so /docs offers an "Authorize" box for the token.
authorization_header = APIKeyHeader(
    name="Authorization",
    auto_error=False,
    description="An API token: SharedAccessSignature sr=<appId>&sig=<sig>&skn=<id>&se=<ms>",
)


async def current_caller(
    request: Request,
    authorization: Annotated[str | None, Depends(authorization_header)],
) -> Caller:
    ctx = context(request)
    return Caller(ctx, authenticate(ctx.store, authorization, datetime.now(UTC)))


async def device_id_param(device_id: Annotated[str, Path(alias="deviceId")]) -> str:
    check_device_id(device_id)
    return device_id


def check_device_id(device_id: str) -> None:
    if not _DEVICE_ID.fullmatch(device_id):
        raise BadRequest(
            f"Device id {device_id!r} is invalid: use 1 to 128 of the characters "
            "A-Z a-z 0-9 - . % _ * ? ! ( ) , : = @ $ '"
        )


async def template_id_param(
    template_id: Annotated[
        str,
        Path(
            alias="deviceTemplateId",
            description="A DTMI such as dtmi:contoso:Thermostat;1, raw or percent-encoded",
        ),
    ],
) -> str:
    """Template ids carry ``:`` and ``;`` and arrive raw or percent-encoded (contract §1.1);
    the ASGI server has decoded them by now."""
    if len(template_id) > _TEMPLATE_ID_MAX or not is_template_id(template_id):
        raise BadRequest(
            f"Device template id {template_id!r} is invalid: use a DTMI such as "
            "dtmi:contoso:Thermostat;1 (at most 512 characters)."
        )
    return template_id


CallerDep = Annotated[Caller, Depends(current_caller)]
TemplateId = Annotated[str, Depends(template_id_param)]
DeviceId = Annotated[str, Depends(device_id_param)]
IfMatch = Annotated[str | None, Header(alias="If-Match")]
# Both application/json and application/merge-patch+json are parsed (contract §1.3).
MergePatch = Annotated[dict[str, Any], Body(media_type="application/merge-patch+json")]
