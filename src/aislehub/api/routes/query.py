"""``POST /api/query``: IoT Central's query language (contract §3.1, §4).

Body ``{"query": "SELECT … FROM <template id> …"}`` → 200 ``{"results": [{…}, …]}``, not
paged. The text is parsed (400 with a position), checked against the caller's app's
template (422), and then either run as one statement of the telemetry store's SQL
(DuckDB or PostgreSQL) in a worker thread (telemetry) or answered from the metadata store
(properties). Every statement is scoped
to the caller's app: its id is the first parameter of every table access.
Served under every api-version, the GA ones included (contract §7, item 15).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from fastapi import APIRouter, Response
from pydantic import StrictStr

from aislehub.api.deps import Caller, CallerDep
from aislehub.api.models import Body
from aislehub.query.dialect import dialect_of
from aislehub.query.iotc_properties import DeviceProperties, property_rows
from aislehub.query.iotc_query import parse_query
from aislehub.query.iotc_sql import PropertyPlan, QueryInvalid, TelemetryPlan, plan_query
from aislehub.store.schema import devices

Json = dict[str, Any]
_PAGE = 500  # devices read per metadata query in a property query

router = APIRouter(tags=["Query"])


class QueryBody(Body):
    """``QueryRequest``: the query text (at most 350 characters, checked with a position)."""

    query: StrictStr


@runtime_checkable
class SqlReader(Protocol):
    """The telemetry store's read-only statement runner."""

    def query(self, sql: str, params: list[Any]) -> tuple[list[str], list[tuple[Any, ...]]]: ...


@router.post(
    "/query",
    summary="Run a query in IoT Central's query language",
    response_model=None,
    responses={200: {"content": {"application/json": {}}}},
)
async def run_query(body: QueryBody, caller: CallerDep) -> Json | Response:
    parsed = parse_query(body.query)
    template = caller.ctx.hub.templates.get(caller.app_id, parsed.template)
    if template is None:
        position = body.query.find(parsed.template) + 1
        raise QueryInvalid(position, f"there is no device template {parsed.template}")
    now = datetime.now(UTC)
    dialect = dialect_of(caller.telemetry).name
    plan = plan_query(parsed, caller.app_id, template.model, template.cloud, now, dialect)
    if isinstance(plan, TelemetryPlan):
        return Response(await _telemetry(caller, plan), media_type="application/json")
    return {"results": property_rows(plan, _devices(caller, plan))}


async def _telemetry(caller: Caller, plan: TelemetryPlan) -> bytes:
    """The response body: the rows come out of the store as JSON object texts."""
    reader = caller.telemetry
    if not isinstance(reader, SqlReader):  # pragma: no cover - every store we ship has it
        raise RuntimeError("the telemetry store cannot run queries")
    # Both stores release the GIL while they work: off the event loop, as the other reads.
    _, rows = await asyncio.to_thread(reader.query, plan.json_sql, list(plan.params))
    return b'{"results":[' + ",".join(row[0] for row in rows).encode() + b"]}"


def _devices(caller: Caller, plan: PropertyPlan) -> list[DeviceProperties]:
    store = caller.ctx.store
    found: list[DeviceProperties] = []
    where = devices.c.template == plan.template
    offset = 0
    while True:
        page = store.list_devices(caller.app_id, offset, _PAGE, where)
        for device in page:
            found.append(
                DeviceProperties(
                    device.id,
                    device.provisioned,
                    device.simulated,
                    store.get_twin(caller.app_id, device.id).reported,
                    store.cloud.get(caller.app_id, device.id).values,
                )
            )
        if len(page) < _PAGE:
            return found
        offset += _PAGE
