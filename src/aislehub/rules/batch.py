"""Ingest-log records → :class:`~aislehub.rules.evaluate.Columns`, no Python loop per message.

The record framing (``ingest/record.py``) is parsed with NumPy: the records are joined
into one buffer, the fixed headers gathered into a structured array, and each
variable-length part (device id, property bag, payload) gathered into one contiguous Arrow
binary column. The fields the rules read are then extracted from the payloads by DuckDB's
JSON functions in one vectorised query (an in-memory connection of this engine's own).
Measured on the reference machine: ~0.75 µs per record for the framing, ~1.2 µs per record
for the JSON extraction of two fields, against ~2.8 µs for the store writer's per-record
decoding.

Devices are numbered by :class:`DeviceIndex`: an Arrow lookup among the devices numbered
so far, Python only for a device seen for the first time.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from aislehub.rules.evaluate import Columns, FieldKey

__all__ = ["BatchDecoder", "DeviceIndex"]

_HEADER = np.dtype(
    [
        ("version", "u1"),
        ("ts", "<i8"),
        ("n_app", "<u2"),
        ("n_dev", "<u2"),
        ("n_mod", "<u2"),
        ("n_props", "<u4"),
        ("n_payload", "<u4"),
    ]
)
_NO_MODULE = 0xFFFF
_SEP = "\x1f"  # between app and device id in a device key (ids never contain it)


class DeviceIndex:
    """Dense numbers for ``(app, device)``, in order of first sight; never reused.

    Thread-safe: the engine numbers each batch's devices on the event loop while a worker
    thread numbers the rules' members."""

    def __init__(self, keys: Sequence[tuple[str, str]] = ()) -> None:
        self.keys: list[tuple[str, str]] = []
        self._numbers: dict[str, int] = {}
        self._lock = threading.Lock()
        self._known = pa.array([], pa.string())  # the keys in number order, for numbers()
        for app, device in keys:
            self.number(app, device)

    def __len__(self) -> int:
        return len(self.keys)

    def number(self, app: str, device: str) -> int:
        joined = f"{app}{_SEP}{device}"
        found = self._numbers.get(joined)
        if found is None:
            with self._lock:
                found = self._numbers.get(joined)
                if found is None:  # the key first: whoever finds the number can read it
                    self.keys.append((app, device))
                    found = self._numbers[joined] = len(self.keys) - 1
        return found

    def find(self, app: str, device: str) -> int | None:
        return self._numbers.get(f"{app}{_SEP}{device}")

    def numbers(self, joined: pa.Array) -> npt.NDArray[np.int64]:
        """Numbers of a column of ``app<SEP>device`` keys: a lookup in Arrow among the keys
        numbered so far (a key's position is its number), Python only for new keys."""
        known = self._known
        if len(known) != len(self.keys):
            known = self._known = pa.array([f"{a}{_SEP}{d}" for a, d in list(self.keys)])
        found = pc.index_in(joined, value_set=known)
        if found.null_count:
            for key in pc.unique(pc.filter(joined, pc.is_null(found))).to_pylist():
                self.number(*key.split(_SEP, 1))
            return self.numbers(joined)
        out: npt.NDArray[np.int64] = found.to_numpy(zero_copy_only=False).astype(np.int64)
        return out


def _gather(buf: npt.NDArray[np.uint8], starts: Any, lengths: Any) -> pa.Array:
    """One Arrow binary column of ``buf[start:start+length]`` for each row.

    The rows lie in order in ``buf`` with gaps between them: over the whole buffer they
    are the odd rows of a binary array whose even rows are the gaps, and Arrow's ``take``
    copies them out value by value (~20x faster than indexing NumPy byte by byte).
    """
    n = len(lengths)
    offsets = np.empty(2 * n + 1, np.int32)  # a batch is far below 2 GiB
    offsets[0] = 0
    offsets[1::2] = starts
    offsets[2::2] = starts + lengths
    both = pa.Array.from_buffers(
        pa.binary(), 2 * n, [None, pa.py_buffer(offsets), pa.py_buffer(buf)]
    )
    return both.take(pa.array(np.arange(1, 2 * n, 2, dtype=np.int32)))


class BatchDecoder:
    """Decodes log entries and extracts ``fields``; not thread-safe (one DuckDB connection)."""

    def __init__(self, devices: DeviceIndex) -> None:
        self.devices = devices
        self._db = duckdb.connect(":memory:", config={"threads": 1})
        self._fields: tuple[FieldKey, ...] = ()
        self._sql = ""
        self._components = False

    def close(self) -> None:
        self._db.close()

    def set_fields(self, fields: set[FieldKey]) -> None:
        self._fields = tuple(sorted(fields, key=lambda f: (f[0] or "", f[1], f[2])))
        self._sql = _extraction_sql(self._fields) if fields else ""
        self._components = any(f[0] is not None for f in fields)  # $.sub needed

    def decode(self, entries: Sequence[tuple[int, bytes]]) -> Columns:
        datas = list(map(itemgetter(1), entries))
        buf = np.frombuffer(b"".join(datas), np.uint8)
        lengths = np.fromiter(map(len, datas), np.int64, len(datas))
        starts = np.cumsum(lengths) - lengths
        head = buf[starts[:, None] + np.arange(_HEADER.itemsize)].view(_HEADER).ravel()
        ok = head["version"] == 1
        n_mod = head["n_mod"].astype(np.int64)
        n_mod[n_mod == _NO_MODULE] = 0
        app_at = starts + _HEADER.itemsize
        dev_at = app_at + head["n_app"]
        props_at = dev_at + head["n_dev"] + n_mod
        payload_at = props_at + head["n_props"]
        app = _gather(buf, app_at, head["n_app"]).cast(pa.string())
        dev = _gather(buf, dev_at, head["n_dev"]).cast(pa.string())
        joined = pc.binary_join_element_wise(app, dev, _SEP)
        devices = self.devices.numbers(joined)
        values: dict[FieldKey, npt.NDArray[Any]] = {}
        if self._fields:
            props = _gather(buf, props_at, head["n_props"] * self._components)
            payload = _gather(buf, payload_at, head["n_payload"])
            values = self._extract(props, payload)
        ts = head["ts"].astype(np.int64)
        if not ok.all():  # a record of another version: a bug or corruption; skip it
            devices, ts = devices[ok], ts[ok]
            values = {k: v[ok] for k, v in values.items()}
        return Columns(devices, ts, values)

    def _extract(self, props: pa.Array, payload: pa.Array) -> dict[FieldKey, npt.NDArray[Any]]:
        table = pa.table({"props": props, "payload": payload})
        self._db.register("batch", table)
        try:
            # execute + fetchnumpy: one call into DuckDB; the relation API's sql() binds,
            # prepares and submits in three (~1.5-2.5 ms a batch whatever its size).
            result = self._db.execute(self._sql).fetchnumpy()
        finally:
            self._db.unregister("batch")
        out: dict[FieldKey, npt.NDArray[Any]] = {}
        for i, key in enumerate(self._fields):
            column = result[f"c{i}"]  # NULL: masked
            if key[2] == "text":
                raw = column.tolist()  # masked → None
                out[key] = np.array([None if v is None else orjson.loads(v) for v in raw], object)
            else:
                out[key] = np.ma.filled(column.astype(np.float64), np.nan)
        return out


def _extraction_sql(fields: Sequence[FieldKey]) -> str:
    """One SELECT with a column per field key over the registered ``batch``.

    Each payload is parsed once: ``json_extract`` with the list of every path wanted.
    Names were checked as DTDL names by the rule parser, so quoting them is enough.
    """
    components = any(f[0] is not None for f in fields)
    paths: list[str] = []
    columns = [f"{_column(f, components, paths)} AS c{i}" for i, f in enumerate(fields)]
    sub = """try(json_extract_string(try(decode(props)), '$."$.sub"'))""" if components else "NULL"
    listed = ", ".join(paths)
    return (
        f"SELECT {', '.join(columns)} FROM ("
        f"SELECT try(json_extract(try(decode(payload)), [{listed}])) AS v, {sub} AS sub "
        "FROM batch)"
    )


def _column(key: FieldKey, components: bool, paths: list[str]) -> str:
    component, name, kind = key

    def at(path: str) -> str:
        paths.append(f"'{path}'")
        return f"v[{len(paths)}]"

    if kind == "num":
        expr = _number(at(f'$."{name}"'))
    elif kind == "text":
        value = at(f'$."{name}"')
        scalar = "('VARCHAR', 'BOOLEAN', 'DOUBLE', 'BIGINT', 'UBIGINT')"
        expr = f"CASE WHEN json_type({value}) IN {scalar} THEN CAST({value} AS VARCHAR) END"
    else:
        index = 1 if kind == "lat" else 0  # GeoJSON: [lon, lat]
        plain = _number(at(f'$."{name}".{kind}'))
        geojson = _number(at(f'$."{name}".coordinates[{index}]'))
        expr = f"coalesce({plain}, {geojson})"
    if components:
        scope = "sub IS NULL" if component is None else f"sub = '{component}'"
        expr = f"CASE WHEN {scope} THEN {expr} END"
    return expr


def _number(value: str) -> str:
    return (
        f"CASE WHEN json_type({value}) IN ('DOUBLE', 'BIGINT', 'UBIGINT') "
        f"THEN CAST({value} AS DOUBLE) END"
    )
