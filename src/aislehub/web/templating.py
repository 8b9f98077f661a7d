"""Jinja2 templates of the operator UI, rendered with the session's user and CSRF token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from aislehub.web.session import Session

__all__ = ["render", "templates"]

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def render(request: Request, name: str, session: Session | None, **context: Any) -> HTMLResponse:
    context |= {"session": session, "csrf": session.csrf if session else ""}
    return templates.TemplateResponse(request, name, context)
