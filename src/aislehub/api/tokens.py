"""API tokens: issued in IoT Central's textual layout, stored only as a hash.

The token a caller pastes is ``SharedAccessSignature sr=<appId>&sig=<sig>&skn=<tokenId>&se=
<expiryMs>`` (contract §1.4). Clients never compute ``sig``, so it is an HMAC-SHA256 under a
random per-token secret that is thrown away: the token is unguessable, and the store keeps
only the SHA-256 of the whole string, so a leaked database reveals no usable token. Deleting
the row (``DELETE /apiTokens/{id}``, or re-issuing the id) revokes it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from aislehub.errors import Unauthorized
from aislehub.store.metadata import ApiToken, MetadataStore

PREFIX = "SharedAccessSignature "


def hash_token(token: str) -> str:
    """The lookup key of a token: SHA-256 (hex) of the whole header value."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def to_millis(expiry: datetime) -> int:
    aware = expiry if expiry.tzinfo else expiry.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


def issue_api_token(
    store: MetadataStore,
    app_id: str,
    token_id: str,
    roles: list[dict[str, Any]],
    expiry: datetime,
) -> str:
    """Create (or replace) token ``token_id`` of ``app_id``; returns the token string once."""
    se = to_millis(expiry)
    message = f"{app_id}\n{token_id}\n{se}".encode()
    digest = hmac.new(secrets.token_bytes(32), message, hashlib.sha256).digest()
    sig = quote(base64.b64encode(digest).decode("ascii"), safe="")
    token = f"{PREFIX}sr={quote(app_id, safe='')}&sig={sig}&skn={token_id}&se={se}"
    stored_expiry = datetime.fromtimestamp(se / 1000, UTC)  # exactly what `se` says
    store.put_token(ApiToken(app_id, token_id, roles, stored_expiry), hash_token(token))
    return token


def authenticate(store: MetadataStore, header: str | None, now: datetime) -> ApiToken:
    """The token behind an ``Authorization`` header, or Unauthorized (contract §1.4)."""
    if not header:
        raise Unauthorized("The Authorization header is missing; send an API token.")
    value = header.strip()
    if not value.startswith(PREFIX):
        raise Unauthorized(
            "The Authorization header must hold an API token that starts with "
            "'SharedAccessSignature '."
        )
    token = store.token_by_hash(hash_token(value))
    if token is None:
        raise Unauthorized("The API token is not valid: it is unknown or was deleted.")
    if token.expiry <= now:
        raise Unauthorized(f"The API token {token.id!r} expired at {token.expiry.isoformat()}.")
    return token
