"""Exports of exactly what is charted: CSV, Parquet and Arrow IPC of a result's columns.

All three are the same wide table: ``time`` (UTC) and one column per series, in the
chart's order ("other" last), empty where a series has no point at that time. The query
that produced it travels along (Parquet and Arrow schema metadata ``aislehub.query``), so
an export can be charted again.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import orjson
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from aislehub.explorer.run import ExplorerResult

__all__ = ["ARROW_STREAM", "to_arrow_ipc", "to_csv", "to_parquet", "to_table"]

ARROW_STREAM = "application/vnd.apache.arrow.stream"


def to_table(result: ExplorerResult) -> pa.Table:
    columns: dict[str, pa.Array] = {"time": pa.array(result.time, pa.timestamp("ms", tz="UTC"))}
    for series, values in zip(result.series, result.values, strict=True):
        columns[series.name] = pa.array(values, pa.float64())
    meta = {
        b"aislehub.query": orjson.dumps(result.query.to_json()),
        b"aislehub.series": orjson.dumps([s.name for s in result.series]),
    }
    return pa.table(columns).replace_schema_metadata(meta)


def to_csv(result: ExplorerResult) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["time", *(s.name for s in result.series)])
    for i, ms in enumerate(result.time):
        stamp = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
        row = [column[i] for column in result.values]
        writer.writerow(
            [stamp.replace("+00:00", "Z"), *("" if v is None else repr(v) for v in row)]
        )
    return out.getvalue()


def to_parquet(result: ExplorerResult) -> bytes:
    sink = io.BytesIO()
    pq.write_table(to_table(result), sink)
    return sink.getvalue()


def to_arrow_ipc(result: ExplorerResult) -> bytes:
    table = to_table(result)
    sink = io.BytesIO()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()
