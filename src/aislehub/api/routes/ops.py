"""Operations endpoints outside ``/api``: no api-version, no token (for probes and Prometheus)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from aislehub.api.deps import context

router = APIRouter(tags=["Operations"])

PROMETHEUS_TEXT = "text/plain; version=0.0.4"


@router.get("/healthz", summary="Liveness probe")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness probe", response_model=None)
async def readyz(request: Request) -> JSONResponse:
    """Ready while the control plane (metadata store) answers. Each tenant cell's state is
    listed but does not decide: one cell's database being down must not take the process,
    and with it every other cell, out of the load balancer."""
    ctx = context(request)
    cells = ctx.cell_status() if ctx.cell_status is not None else []
    try:
        await asyncio.to_thread(ctx.store.list_apps)
    except Exception as exc:  # any failure of the control plane means not ready
        why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        body = {"status": "unavailable", "metadata": why, "cells": cells}
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ready", "cells": cells})


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> PlainTextResponse:
    body = context(request).metrics.render()
    return PlainTextResponse(body, media_type=PROMETHEUS_TEXT)
