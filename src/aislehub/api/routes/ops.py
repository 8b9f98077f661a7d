"""Operations endpoints outside ``/api``: no api-version, no token (for probes and Prometheus)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from aislehub.api.deps import context

router = APIRouter(tags=["Operations"])

PROMETHEUS_TEXT = "text/plain; version=0.0.4"


@router.get("/healthz", summary="Liveness probe")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> PlainTextResponse:
    body = context(request).metrics.render()
    return PlainTextResponse(body, media_type=PROMETHEUS_TEXT)
