"""The operator UI: server-rendered pages (Jinja2 + htmx), charts with uPlot.

Served by the API's FastAPI app at ``/`` beside ``/api``, ``/docs``, ``/metrics`` and
``/healthz``. Layers: ``session`` (signed cookies, CSRF), ``templating``, ``forms`` (command
forms from DTDL), ``overview`` (what pages and tiles show, read from the stores) and
``pages`` (the routes). Browser assets come from the npm registry (``package.json``) and
are copied into ``static/vendor`` by ``make install``; nothing is loaded from elsewhere.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

__all__ = ["install_web"]

STATIC = Path(__file__).parent / "static"


def install_web(app: FastAPI, secret: bytes | str | None = None) -> None:
    """Add the UI's routes, static files and login redirects to ``app``."""
    # Imported here: the pages build on the API package, which imports this function.
    from aislehub.web.pages import CsrfFailed, LoginRequired, router
    from aislehub.web.session import SessionCodec

    app.state.web_sessions = SessionCodec(secret)
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")
    app.include_router(router)
    app.add_exception_handler(LoginRequired, _to_login)
    app.add_exception_handler(CsrfFailed, _csrf_failed)


async def _to_login(request: Request, exc: Exception) -> Response:
    if request.headers.get("HX-Request") or request.method != "GET":
        return PlainTextResponse(
            "Sign in again.", status_code=401, headers={"HX-Redirect": "/login"}
        )
    return RedirectResponse("/login", status_code=303)


async def _csrf_failed(request: Request, exc: Exception) -> Response:
    return PlainTextResponse("Missing or wrong CSRF token; reload the page.", status_code=403)
