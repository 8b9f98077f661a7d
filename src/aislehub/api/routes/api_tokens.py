"""``/apiTokens`` (contract §2.16), plus the singular ``/apiToken/{id}`` of an old doc.

``token`` appears once, in the PUT response; lists and GETs never show it (only its hash is
stored). PUT on an existing id issues a new token and revokes the old one. No PATCH.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request

from aislehub.api.deps import CallerDep
from aislehub.api.models import ApiTokenBody
from aislehub.api.paging import paged_list
from aislehub.api.tokens import issue_api_token
from aislehub.api.views import token_view
from aislehub.errors import BadRequest, NotFound, ValidationFailed

Json = dict[str, Any]
DEFAULT_LIFETIME = timedelta(days=365)  # IoT Central's default (§1.4)
# The id travels unencoded as `skn=` in the token, so it may not hold `&`, `=` or spaces.
_TOKEN_ID = re.compile(r"[A-Za-z0-9_.~-]{1,128}")

router = APIRouter(tags=["API tokens"])


async def token_id_param(token_id: Annotated[str, Path(alias="tokenId")]) -> str:
    if not _TOKEN_ID.fullmatch(token_id):
        raise BadRequest(
            f"API token id {token_id!r} is invalid: use 1 to 128 letters, digits, '-', '_', "
            "'.' or '~'."
        )
    return token_id


TokenId = Annotated[str, Depends(token_id_param)]


@router.get("/apiTokens", summary="List API tokens")
async def list_tokens(request: Request, caller: CallerDep) -> Json:
    tokens = [token_view(t) for t in caller.ctx.store.list_tokens(caller.app_id)]
    return paged_list(request, caller.ctx.public_base_url, tokens)


@router.get("/apiTokens/{tokenId}", summary="Get an API token")
@router.get("/apiToken/{tokenId}", include_in_schema=False)
async def get_token(token_id: TokenId, caller: CallerDep) -> Json:
    token = caller.ctx.store.get_token(caller.app_id, token_id)
    if token is None:
        raise NotFound(f"API token {token_id!r} was not found.")
    return token_view(token)


@router.put("/apiTokens/{tokenId}", summary="Create an API token (the token is shown once)")
@router.put("/apiToken/{tokenId}", include_in_schema=False)
async def put_token(token_id: TokenId, body: ApiTokenBody, caller: CallerDep) -> Json:
    now = datetime.now(UTC)
    expiry = _aware(body.expiry) if body.expiry else now + DEFAULT_LIFETIME
    if expiry <= now:
        raise ValidationFailed(f"expiry {expiry.isoformat()} is not in the future.")
    roles = [r.model_dump(by_alias=True, exclude_none=True) for r in body.roles]
    store = caller.ctx.store
    secret = issue_api_token(store, caller.app_id, token_id, roles, expiry)
    token = store.get_token(caller.app_id, token_id)
    if token is None:  # written a moment ago by this same thread
        raise RuntimeError(f"API token {token_id!r} vanished right after it was stored")
    return token_view(token, secret)


@router.delete("/apiTokens/{tokenId}", status_code=204, summary="Delete (revoke) an API token")
@router.delete("/apiToken/{tokenId}", status_code=204, include_in_schema=False)
async def delete_token(token_id: TokenId, caller: CallerDep) -> None:
    if not caller.ctx.store.delete_token(caller.app_id, token_id):
        raise NotFound(f"API token {token_id!r} was not found.")


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)
