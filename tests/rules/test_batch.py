"""The batch decoder's device numbering and field extraction, on real records."""

from __future__ import annotations

import math
import threading
from typing import Any

import orjson
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from aislehub.ingest.record import TelemetryRecord, encode_record
from aislehub.rules.batch import BatchDecoder, DeviceIndex

TEMPERATURE = (None, "temperature", "num")
MODE = (None, "mode", "text")


def joined(*keys: tuple[str, str]) -> pa.Array:
    return pa.array([f"{app}\x1f{device}" for app, device in keys])


def test_numbers_known_and_new_keys_in_order_of_first_sight() -> None:
    index = DeviceIndex([("a", "d1")])
    numbers = index.numbers(joined(("a", "d2"), ("a", "d1"), ("b", "d1"), ("a", "d2")))
    assert numbers.tolist() == [1, 0, 2, 1]
    assert index.keys == [("a", "d1"), ("a", "d2"), ("b", "d1")]
    assert index.numbers(joined(("b", "d1"), ("a", "d1"))).tolist() == [2, 0]
    assert index.find("b", "d1") == 2 and index.find("b", "d9") is None


def test_numbering_from_several_threads_stays_dense() -> None:
    index = DeviceIndex()
    keys = [("app", f"dev-{i}") for i in range(2_000)]

    def number_all() -> None:
        for app, device in keys:
            index.number(app, device)

    threads = [threading.Thread(target=number_all) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(index.keys) == sorted(keys)
    assert [index.find(*k) for k in index.keys] == list(range(len(keys)))


def test_decode_extracts_numbers_and_scalars_with_gaps() -> None:
    bodies: list[object] = [
        {"temperature": 21.5, "mode": "eco"},
        {"temperature": "hot", "mode": 3},
        {"mode": {"not": "a scalar"}},
        "not an object",
    ]
    entries = [
        (i, encode_record(TelemetryRecord("app", f"d{i % 2}", None, 100 + i, {}, orjson.dumps(b))))
        for i, b in enumerate(bodies)
    ]
    decoder = BatchDecoder(DeviceIndex())
    decoder.set_fields({TEMPERATURE, MODE})
    cols = decoder.decode(entries)
    decoder.close()
    assert cols.device.tolist() == [0, 1, 0, 1]
    assert cols.ts.tolist() == [100, 101, 102, 103]
    temperature = cols.values[TEMPERATURE].tolist()
    assert temperature[0] == 21.5 and all(math.isnan(v) for v in temperature[1:])
    assert cols.values[MODE].tolist() == ["eco", 3, None, None]


apps = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)
ids = st.text(  # what IoT Hub allows in device and module ids
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.%_*?!(),:=@$'",
    min_size=1,
    max_size=128,
)
components = st.none() | st.sampled_from(["thermostat1", "door"])
temperatures = st.none() | st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            apps, ids, st.none() | ids, components, st.integers(0, 2**53), temperatures, st.binary()
        ),
        min_size=1,
        max_size=40,
    )
)
def test_decode_agrees_with_decoding_each_record(rows: list[tuple[Any, ...]]) -> None:
    """Whatever the ids, modules, bag sizes and payloads, the columns are what decoding
    the records one by one gives."""
    records = []
    for app, device, module, component, ts, temperature, junk in rows:
        body = {"temperature": temperature, "junk": junk.hex()} if temperature is not None else {}
        props = {"$.sub": component} if component else {"x": junk.hex()}
        records.append(TelemetryRecord(app, device, module, ts, props, orjson.dumps(body)))
    index = DeviceIndex()
    decoder = BatchDecoder(index)
    decoder.set_fields({TEMPERATURE, ("thermostat1", "temperature", "num")})
    cols = decoder.decode([(i, encode_record(r)) for i, r in enumerate(records)])
    decoder.close()
    assert [index.keys[d] for d in cols.device] == [(r.app_id, r.device_id) for r in records]
    assert cols.ts.tolist() == [r.enqueued_ms for r in records]
    for key in (TEMPERATURE, ("thermostat1", "temperature", "num")):
        want = [
            orjson.loads(r.payload).get("temperature")
            if r.properties.get("$.sub") == key[0]
            else None
            for r in records
        ]
        got = [None if math.isnan(v) else v for v in cols.values[key].tolist()]
        assert got == want
