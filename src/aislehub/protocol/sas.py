"""Shared Access Signature tokens, built and checked exactly as the device SDK does.

Contract §4 (``common/auth/sastoken.py`` L63-90 in ``azure-iot-device`` 2.14)::

    sr  = quote(resource, safe="")          # the *encoded* resource is what gets signed
    sig = base64(HMAC-SHA256(base64decode(key), sr + "\\n" + se))
    token = "SharedAccessSignature sr=" + sr + "&sig=" + quote(sig, safe="") + "&se=" + se

The resource is ``{host}/devices/{id}[/modules/{m}]`` on the hub and
``{idScope}/registrations/{registrationId}`` at DPS. The host is whatever the application
passed as ``hostname``, so :func:`check_hub_resource` does not pin it: the per-device key
already proves who signed.

Sans-IO: nothing here reads a clock; callers pass ``now`` (Unix seconds).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, unquote

from aislehub.errors import AuthenticationFailed

PREFIX = "SharedAccessSignature "
_EXPIRY = re.compile(r"[0-9]{1,15}")  # Unix seconds; 15 digits is far beyond any real expiry


@dataclass(frozen=True, slots=True)
class SasToken:
    """A parsed token. ``sr_raw`` stays percent-encoded: it is the signed text (§4 step 2)."""

    sr_raw: str
    sig: str
    se: int
    skn: str | None = None

    @property
    def resource(self) -> str:
        """The decoded resource URI, e.g. ``myhub.example.net/devices/cooler-1``."""
        return unquote(self.sr_raw)


def _decode_key(key_b64: str) -> bytes:
    # The SDK uses a lenient base64.b64decode (signing_mechanism.py L36-45); so do we, so
    # that both sides derive the same bytes from a key with stray whitespace.
    try:
        return base64.b64decode(key_b64)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("symmetric key is not valid base64") from exc


def _sign(key_b64: str, message: str) -> str:
    digest = hmac.new(_decode_key(key_b64), message.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def derive_device_key(group_key_b64: str, registration_id: str) -> str:
    """The device key of a DPS group enrollment (contract §3.1)."""
    return _sign(group_key_b64, registration_id)


def generate_sas_token(
    resource: str, key_b64: str, expiry: int, key_name: str | None = None
) -> str:
    """A token byte-for-byte equal to the SDK's for the same inputs (contract §4)."""
    sr = quote(resource, safe="")
    sig = quote(_sign(key_b64, f"{sr}\n{expiry}"), safe="")
    token = f"{PREFIX}sr={sr}&sig={sig}&se={expiry}"
    return f"{token}&skn={key_name}" if key_name else token


def parse_sas_token(token: str) -> SasToken:
    """Split a CONNECT password into its fields (§4 step 1); unknown fields are ignored."""
    if not token.startswith(PREFIX):
        raise AuthenticationFailed("SAS token does not start with 'SharedAccessSignature '")
    fields = _split_fields(token[len(PREFIX) :])
    for name in ("sr", "sig", "se"):
        if not fields.get(name):
            raise AuthenticationFailed(f"SAS token lacks the {name!r} field")
    if not _EXPIRY.fullmatch(fields["se"]):
        raise AuthenticationFailed(f"SAS token 'se' is not a Unix time: {fields['se']!r}")
    return SasToken(
        fields["sr"], unquote(fields["sig"]), int(fields["se"]), fields.get("skn") or None
    )


def _split_fields(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in text.split("&"):
        name, sep, value = part.partition("=")
        if not sep:
            raise AuthenticationFailed(f"SAS token field without '=': {part!r}")
        if name in fields:
            raise AuthenticationFailed(f"SAS token repeats the {name!r} field")
        fields[name] = value
    return fields


def verify_sas_signature(token: SasToken, keys: Sequence[str], now: float) -> None:
    """§4 steps 2-3: the signature matches one of ``keys`` and the token has not expired."""
    message = f"{token.sr_raw}\n{token.se}"
    offered = token.sig.encode("utf-8")
    # Every key is tried, so timing does not reveal which one (if any) matched.
    matches = [hmac.compare_digest(_sign(k, message).encode("ascii"), offered) for k in keys]
    if not any(matches):
        raise AuthenticationFailed("SAS token signature does not match the device key")
    if token.se <= now:
        raise AuthenticationFailed(f"SAS token expired at {token.se}")


def verify_sas_token(
    token: SasToken, expected_resource: str, keys: Sequence[str], now: float
) -> None:
    """§4 steps 2-4 with a fully pinned resource, compared case-insensitively."""
    verify_sas_signature(token, keys, now)
    if token.resource.lower() != expected_resource.lower():
        raise _wrong_resource(token.resource, expected_resource)


def verify_hub_token(
    token: SasToken, device_id: str, module_id: str | None, keys: Sequence[str], now: float
) -> None:
    """A hub CONNECT password: signature, expiry, and ``{any host}/devices/{id}[/modules/{m}]``."""
    verify_sas_signature(token, keys, now)
    check_hub_resource(token.resource, device_id, module_id)


def verify_dps_token(
    token: SasToken, id_scope: str, registration_id: str, keys: Sequence[str], now: float
) -> None:
    """A DPS CONNECT password: signature, expiry, ``{idScope}/registrations/{regId}`` (§3)."""
    verify_sas_signature(token, keys, now)
    check_dps_resource(token.resource, id_scope, registration_id)


def check_hub_resource(resource: str, device_id: str, module_id: str | None) -> None:
    """Accept ``<host>/devices/<id>[/modules/<m>]`` for any non-empty host (§4 step 4)."""
    host, sep, path = resource.partition("/")
    expected = f"devices/{device_id}" + (f"/modules/{module_id}" if module_id else "")
    if not host or not sep or path.lower() != expected.lower():
        raise _wrong_resource(resource, f"<host>/{expected}")


def check_dps_resource(resource: str, id_scope: str, registration_id: str) -> None:
    """Accept exactly ``{idScope}/registrations/{registrationId}``, case-insensitively."""
    expected = f"{id_scope}/registrations/{registration_id}"
    if resource.lower() != expected.lower():
        raise _wrong_resource(resource, expected)


def _wrong_resource(resource: str, expected: str) -> AuthenticationFailed:
    return AuthenticationFailed(f"SAS token is for {resource!r}, expected {expected!r}")
