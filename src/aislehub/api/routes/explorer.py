"""``POST /api/explorer/query`` and ``/api/explorer/export`` (ours): the metrics explorer.

The body is an explorer query (``aislehub.explorer.model``); the answer is columnar JSON
(``time`` and one value column per series), or Arrow IPC when the request's ``Accept``
names ``application/vnd.apache.arrow.stream``. The export takes the same body and gives
the same columns as CSV or Parquet (``?format=csv|parquet``). The app of every statement
is the caller's token's.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Body, Header, Query, Response

from aislehub.api.deps import Caller, CallerDep
from aislehub.explorer import ExplorerResult, parse_explorer_query, run_explorer_query
from aislehub.explorer.export import ARROW_STREAM, to_arrow_ipc, to_csv, to_parquet

router = APIRouter(tags=["Metrics explorer (aislehub)"])
QueryBody = Annotated[dict[str, Any], Body(description="An explorer query (see the docs)")]


async def explore(caller: Caller, body: Any, export: bool = False) -> ExplorerResult:
    """Parse and run ``body`` for the caller's app, off the event loop; an export loads
    whatever the budget says (the file is what the user asked for)."""
    query = parse_explorer_query(body)
    if export:
        query = dataclasses.replace(query, load_anyway=True)
    return await asyncio.to_thread(
        run_explorer_query, query, caller.app_id, caller.ctx.store, caller.telemetry
    )


@router.post("/explorer/query", summary="Run a metrics explorer query", response_model=None)
async def explorer_query(
    body: QueryBody,
    caller: CallerDep,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    result = await explore(caller, body)
    if accept and ARROW_STREAM in accept:
        return Response(to_arrow_ipc(result), media_type=ARROW_STREAM)
    return Response(orjson.dumps(result.to_json()), media_type="application/json")


@router.post("/explorer/export", summary="Export a metrics explorer query", response_model=None)
async def explorer_export(
    body: QueryBody,
    caller: CallerDep,
    fmt: Annotated[Literal["csv", "parquet"], Query(alias="format")] = "csv",
) -> Response:
    return export_response(await explore(caller, body, export=True), fmt)


def export_response(result: ExplorerResult, fmt: str) -> Response:
    name = f"explorer-{result.query.metric}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if fmt == "parquet":
        return Response(
            to_parquet(result), media_type="application/vnd.apache.parquet", headers=headers
        )
    return Response(to_csv(result), media_type="text/csv; charset=utf-8", headers=headers)
