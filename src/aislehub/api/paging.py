"""Collections: ``{"value": [...], "nextLink": "<absolute URL>"}`` (contract §1.6).

``nextLink`` repeats the caller's query (``api-version`` included), pins ``maxpagesize`` and
adds an opaque ``$skiptoken``, so a client can GET it verbatim with no extra parameters,
as the az CLI does. It starts with the request's own scheme and host (or the configured
public base URL behind a proxy), never a hard-coded domain.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import Request

from aislehub.errors import BadRequest

T = TypeVar("T")
Json = dict[str, Any]

# The preview spec's maxpagesize range and default (S3, S7); GA uses the same default.
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 25
_TOKEN_PREFIX = "o:"


@dataclass(frozen=True, slots=True)
class PageRequest:
    offset: int
    size: int


def page_request(request: Request) -> PageRequest:
    """``maxpagesize`` (or the older ``$top``) and ``$skiptoken`` of a list request."""
    params = request.query_params
    raw_size = params.get("maxpagesize") or params.get("$top")
    size = _page_size(raw_size) if raw_size is not None else DEFAULT_PAGE_SIZE
    token = params.get("$skiptoken")
    return PageRequest(_decode_skiptoken(token) if token else 0, size)


def _page_size(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise BadRequest(f"maxpagesize must be an integer from 1 to {MAX_PAGE_SIZE}, not {raw!r}.")
    return int(raw)


def encode_skiptoken(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_TOKEN_PREFIX}{offset}".encode()).decode().rstrip("=")


def _decode_skiptoken(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    number = text.removeprefix(_TOKEN_PREFIX)
    if not text.startswith(_TOKEN_PREFIX) or not number.isdigit():
        raise BadRequest(f"$skiptoken {token!r} is not valid; follow nextLink as returned.")
    return int(number)


def next_link(request: Request, page: PageRequest, public_base_url: str | None) -> str:
    base = (public_base_url or f"{request.url.scheme}://{request.url.netloc}").rstrip("/")
    params = [
        (k, v)
        for k, v in request.query_params.multi_items()
        if k not in ("$skiptoken", "maxpagesize", "$top")
    ]
    params += [
        ("maxpagesize", str(page.size)),
        ("$skiptoken", encode_skiptoken(page.offset + page.size)),
    ]
    query = "&".join(f"{quote(k, safe='$')}={quote(v, safe='')}" for k, v in params)
    return f"{base}{request.url.path}?{query}"


def paged(
    request: Request,
    public_base_url: str | None,
    fetch: Callable[[int, int], Sequence[T]],
    render: Callable[[T], Json],
) -> Json:
    """One page: ``fetch(offset, limit)`` is asked for one row more than the page holds,
    which tells whether a next page exists without counting."""
    page = page_request(request)
    rows = fetch(page.offset, page.size + 1)
    body: Json = {"value": [render(row) for row in rows[: page.size]]}
    if len(rows) > page.size:
        body["nextLink"] = next_link(request, page, public_base_url)
    return body


def paged_list(request: Request, public_base_url: str | None, items: Sequence[Json]) -> Json:
    """:func:`paged` over a list already in memory."""
    return paged(request, public_base_url, lambda o, n: items[o : o + n], lambda x: x)
