"""Batches and cancellation thresholds: the arithmetic of contract §2.11."""

from __future__ import annotations

import pytest

from aislehub.errors import BadRequest
from aislehub.jobs.model import Threshold, batch_size, parse_definition, split_batches

DATA = [{"type": "command", "target": "dtmi:a:b;1", "path": "reboot", "value": None}]


@pytest.mark.parametrize(
    ("batch", "total", "size"),
    [
        (None, 50, 50),
        (None, 0, 1),
        ({"type": "number", "value": 10}, 50, 10),
        ({"type": "number", "value": 10}, 3, 10),
        ({"type": "percentage", "value": 25}, 50, 13),  # ⌈12.5⌉
        ({"type": "percentage", "value": 20}, 50, 10),
        ({"type": "percentage", "value": 1}, 50, 1),
        ({"type": "percentage", "value": 100}, 7, 7),
    ],
)
def test_batch_size(batch: dict[str, object] | None, total: int, size: int) -> None:
    assert batch_size(batch, total) == size


def test_split_batches_keeps_order_and_a_short_tail() -> None:
    ids = [f"d{i}" for i in range(7)]
    assert split_batches(ids, {"type": "number", "value": 3}) == [ids[:3], ids[3:6], ids[6:]]
    assert split_batches([], {"type": "number", "value": 3}) == []


@pytest.mark.parametrize(
    ("raw", "failed", "counted", "tripped"),
    [
        ({"type": "number", "value": 3}, 2, 10, False),
        ({"type": "number", "value": 3}, 3, 10, True),
        ({"type": "percentage", "value": 30}, 2, 10, False),
        ({"type": "percentage", "value": 30}, 3, 10, True),
        ({"type": "percentage", "value": 10}, 1, 50, False),  # 2 %
        ({"type": "percentage", "value": 10}, 5, 50, True),
        ({"type": "percentage", "value": 0.5}, 0, 10, False),  # no failure never trips
    ],
)
def test_threshold(raw: dict[str, object], failed: int, counted: int, tripped: bool) -> None:
    threshold = Threshold.of(raw)
    assert threshold is not None and threshold.tripped(failed, counted) is tripped


def test_threshold_scope() -> None:
    assert Threshold.of(None) is None
    per_batch = Threshold.of({"type": "number", "value": 2, "batch": True})
    assert per_batch is not None and per_batch.per_batch


def test_definition_normalises_spellings_and_sizes() -> None:
    d = parse_definition(
        {
            "group": "g",
            "batch": {"type": "number", "value": 10.0},
            "cancellationThreshold": {"type": "percentage", "value": 12.5},
            "data": [
                {"type": "CommandJobData", "target": "dtmi:a:b;1", "path": "reboot"},
                {"type": "command", "target": "dtmi:a:b;1", "path": "ping", "value": 1},
            ],
        }
    )
    assert d.batch == {"type": "number", "value": 10}
    assert d.cancellation_threshold == {"type": "percentage", "value": 12.5, "batch": False}
    assert [item["type"] for item in d.data] == ["command", "command"]
    assert d.data[0] == {**DATA[0]}


@pytest.mark.parametrize(
    "body",
    [
        {"data": DATA},  # no group
        {"group": "g", "data": []},
        {"group": "g", "data": DATA, "batch": {"type": "number", "value": 2.5}},
        {"group": "g", "data": DATA, "batch": {"type": "number", "value": 0}},
        {"group": "g", "data": DATA, "batch": {"type": "percentage", "value": 101}},
        {"group": "g", "data": DATA, "batch": {"type": "ratio", "value": 1}},
        {"group": "g", "data": [{"type": "property", "target": "dtmi:a:b;1"}]},  # no path
        {"group": "g", "data": [{"type": "deviceTemplateMigration"}]},
    ],
)
def test_malformed_definitions(body: dict[str, object]) -> None:
    with pytest.raises(BadRequest):
        parse_definition(body)
