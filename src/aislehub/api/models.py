"""Request bodies, as pydantic models in IoT Central's camelCase (contract §2).

Unknown and read-only fields (``id``, ``provisioned``, ``token``, ...) are ignored, as the
contract asks (§1.3). Scalars are strict: ``"enabled": "yes"`` is a 400, not ``True``.
A PATCH is merged (RFC 7386) onto the entity's current JSON view and the result is
validated with the same model as a PUT, so both give the same precise messages.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)
from pydantic.alias_generators import to_camel

from aislehub.api.handlers import describe_errors
from aislehub.errors import BadRequest, PreconditionFailed

M = TypeVar("M", bound=BaseModel)

# Storage column widths (store/schema.py) bound the text fields.
DisplayName = Annotated[StrictStr, Field(min_length=1, max_length=200)]


def _base64_key(value: str) -> str:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be base64") from None
    if not 16 <= len(raw) <= 64:  # DPS accepts keys of 16 to 64 bytes
        raise ValueError("must decode to 16 to 64 bytes")
    return value


Base64Key = Annotated[StrictStr, AfterValidator(_base64_key)]


class Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class DeviceBody(Body):
    """``Device`` (§2.1); no field is required, ``{}`` makes an enabled unassociated device."""

    display_name: DisplayName | None = None
    template: Annotated[StrictStr, Field(max_length=512)] | None = None
    enabled: StrictBool = True
    simulated: StrictBool = False
    # IoT Central supports one organization per device today (§2.1).
    organizations: Annotated[list[StrictStr], Field(max_length=1)] = []
    etag: StrictStr | None = None


class SymmetricKeyBody(Body):
    primary_key: Base64Key | None = None
    secondary_key: Base64Key | None = None


class AttestationBody(Body):
    """Device ``Attestation`` (§2.2); only ``symmetricKey`` is served, others → 422."""

    type: Literal["symmetricKey", "x509", "tpm"]
    symmetric_key: SymmetricKeyBody | None = None


class GroupAttestationBody(Body):
    type: Literal["symmetricKey", "x509"]
    symmetric_key: SymmetricKeyBody | None = None


class EnrollmentGroupBody(Body):
    """``EnrollmentGroup`` (§2.10)."""

    display_name: DisplayName
    type: Literal["iot", "iotEdge"]
    enabled: StrictBool = True
    attestation: GroupAttestationBody
    etag: StrictStr | None = None


class DeviceGroupBody(Body):
    """``DeviceGroup`` (§2.9): ``displayName`` and ``filter`` required."""

    display_name: DisplayName
    # The parser bounds the filter (query.device_filter.MAX_LENGTH) with a positioned error.
    filter: StrictStr
    description: Annotated[StrictStr, Field(max_length=2000)] | None = None
    organizations: Annotated[list[StrictStr], Field(max_length=1)] = []
    etag: StrictStr | None = None


class CommandBody(Body):
    """``DeviceCommand`` as sent to run one (§2.5); all fields optional."""

    connection_timeout: Annotated[StrictInt, Field(ge=0, le=30)] = 0
    response_timeout: Annotated[StrictInt, Field(ge=5, le=30)] = 30
    request: Any = None


class MessageBody(Body):
    """Our cloud-to-device message: ``{"data", "properties", "ttlSeconds"}``."""

    data: Any
    properties: dict[str, StrictStr] = {}
    # IoT Hub's longest C2D time-to-live is 48 hours.
    ttl_seconds: Annotated[StrictInt, Field(ge=1, le=48 * 3600)] | None = None


class RoleAssignment(Body):
    role: Annotated[StrictStr, Field(min_length=1)]
    organization: StrictStr | None = None


class ApiTokenBody(Body):
    """``ApiToken`` (§2.16): ``roles`` required, ``expiry`` defaults to a year from now."""

    roles: Annotated[list[RoleAssignment], Field(min_length=1)]
    expiry: datetime | None = None


def parse(model: type[M], data: Any) -> M:
    """Validate ``data`` as ``model``; any problem is a 400 with every field named."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadRequest(describe_errors(exc.errors())) from None


def check_etag(current: str, if_match: str | None, body_etag: str | None) -> None:
    """Optimistic concurrency (§1.8): ``If-Match`` or a body ``etag`` must be current."""
    for offered in (if_match, body_etag):
        if offered is None or offered.strip() == "*":
            continue
        if offered.strip().removeprefix("W/").strip('"') != current:
            raise PreconditionFailed(
                f"The etag {offered!r} does not match the current etag {current!r}; "
                "GET the entity again and retry."
            )
