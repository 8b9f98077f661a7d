"""One exception tree for the whole product.

::

    AislehubError                     base of everything we raise on purpose
    ├── ProtocolError                 a peer broke a wire protocol (we close the connection)
    │   ├── NeedMoreData              not an error: the buffer holds only a prefix of a packet
    │   ├── MalformedPacket           bytes that no valid packet starts with
    │   └── PacketTooLarge            remaining length over our limit
    ├── ModelError / ModelErrors      a DTDL document breaks a rule (aislehub.models.errors)
    ├── DeviceError                   a device did something we refuse (→ MQTT reason code)
    │   ├── AuthenticationFailed      bad SAS token, unknown device, disabled device (CONNACK 5)
    │   ├── ServerBusy                overloaded; retry later (CONNACK 3)
    │   └── TopicNotAllowed           a topic outside the device's namespace (disconnect)
    └── ApiError                      a caller of the REST API erred (→ HTTP 4xx, IoT Central shape)
        ├── BadRequest                400
        ├── Unauthorized              401
        ├── Forbidden                 403
        ├── NotFound                  404
        ├── Conflict                  409
        ├── PreconditionFailed        412
        ├── ValidationFailed          422
        ├── NotImplementedHere        501 (valid, but not on this server's engines)
        └── GatewayTimeout            504 (a device did not answer in time)

Anything else escaping a handler is our own bug: it is logged with a traceback and the
caller sees a 500 (API) or a closed connection (device), never a silent success.
"""

from __future__ import annotations


class AislehubError(Exception):
    """Base of every error aislehub raises on purpose."""


class ProtocolError(AislehubError):
    """A peer sent bytes that break the wire protocol."""


class NeedMoreData(ProtocolError):
    """The buffer holds only a prefix of a packet; feed more bytes and retry."""


class MalformedPacket(ProtocolError):
    """The bytes can never form a valid packet."""


class PacketTooLarge(ProtocolError):
    """A packet announces a remaining length above the configured limit."""


class DeviceError(AislehubError):
    """A device request we refuse; carries the MQTT CONNACK return code to send."""

    connack_code = 5


class AuthenticationFailed(DeviceError):
    connack_code = 5


class ServerBusy(DeviceError):
    connack_code = 3


class TopicNotAllowed(DeviceError):
    connack_code = 5


class ApiError(AislehubError):
    """An API caller's mistake; rendered as ``{"error": {code, message, requestId, time}}``."""

    status = 400
    code = "BadRequest"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ApiError):
    status, code = 400, "BadRequest"


class Unauthorized(ApiError):
    status, code = 401, "Unauthorized"


class Forbidden(ApiError):
    status, code = 403, "Forbidden"


class NotFound(ApiError):
    status, code = 404, "NotFound"


class Conflict(ApiError):
    status, code = 409, "Conflict"


class PreconditionFailed(ApiError):
    status, code = 412, "PreconditionFailed"


class ValidationFailed(ApiError):
    status, code = 422, "ValidationFailed"


class NotImplementedHere(ApiError):
    """The request is valid, but this server's configuration cannot answer it."""

    status, code = 501, "NotImplemented"


class ServiceUnavailable(ApiError):
    """A store or log the request needs is down; other tenants' requests still work."""

    status, code = 503, "ServiceUnavailable"


class GatewayTimeout(ApiError):
    status, code = 504, "GatewayTimeout"
