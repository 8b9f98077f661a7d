"""Signed session cookies and CSRF tokens for the operator UI.

The session is a cookie signed with the server's secret (itsdangerous, HMAC-SHA1 over a
timestamped payload): ``{"u": user, "a": app, "c": csrf}``, HttpOnly, ``SameSite=Lax``,
``Secure`` behind HTTPS, valid for 12 hours. Nothing is stored server-side; logout clears
the cookie. Every state-changing request (form POST, htmx POST, fetch) must carry the
session's CSRF token, as the form field ``csrf`` or the ``X-CSRF-Token`` header; an
anonymous visitor gets a session with a CSRF token only, so the login form is covered too.
The token is rotated at login.
"""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

__all__ = ["COOKIE", "Session", "SessionCodec", "csrf_ok"]

COOKIE = "aislehub_session"
MAX_AGE = 12 * 3600
CSRF_HEADER = "X-CSRF-Token"


@dataclass(frozen=True, slots=True)
class Session:
    csrf: str
    user: str | None = None
    app_id: str | None = None

    @property
    def signed_in(self) -> bool:
        return self.user is not None and self.app_id is not None


class SessionCodec:
    """Reads and writes the session cookie with one secret."""

    def __init__(self, secret: bytes | str | None = None) -> None:
        key = secret or os.environ.get("AISLEHUB_SESSION_SECRET") or secrets.token_bytes(32)
        self._serializer = URLSafeTimedSerializer(key, salt="aislehub.web.session")

    def read(self, request: Request) -> Session | None:
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data: dict[str, Any] = self._serializer.loads(raw, max_age=MAX_AGE)
        except BadSignature:
            return None
        csrf = data.get("c")
        if not isinstance(csrf, str):
            return None
        return Session(csrf, data.get("u"), data.get("a"))

    def write(self, request: Request, response: Response, session: Session) -> None:
        payload = {"c": session.csrf, "u": session.user, "a": session.app_id}
        response.set_cookie(
            COOKIE,
            self._serializer.dumps(payload),
            max_age=MAX_AGE,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path="/",
        )

    @staticmethod
    def clear(response: Response) -> None:
        response.delete_cookie(COOKIE, path="/")


def new_session(user: str | None = None, app_id: str | None = None) -> Session:
    return Session(secrets.token_urlsafe(24), user, app_id)


def csrf_ok(session: Session | None, sent: str | None) -> bool:
    return session is not None and sent is not None and hmac.compare_digest(session.csrf, sent)
