"""The re-send window: exact within its capacity, bounded beyond it."""

from __future__ import annotations

from aislehub.ingest.columns import Row
from aislehub.ingest.dedupe import DedupeWindow


def row(offset: int, mid: str | None, device: str = "d1") -> Row:
    return (offset, "app", device, None, 0, b"{}", b"{}", mid, None)


def test_duplicates_within_a_batch_and_across_batches() -> None:
    window = DedupeWindow(100)
    fresh, keys = window.filter([row(0, "a"), row(1, "a"), row(2, "b"), row(3, "a", "d2")])
    assert [r[0] for r in fresh] == [0, 2, 3]
    window.remember(keys)
    fresh, _ = window.filter([row(4, "b"), row(5, "c")])
    assert [r[0] for r in fresh] == [5]


def test_messages_without_id_always_pass() -> None:
    window = DedupeWindow(100)
    fresh, keys = window.filter([row(0, None), row(1, None)])
    assert len(fresh) == 2 and keys == set()


def test_filter_does_not_remember_until_told() -> None:
    """A batch whose store write failed must pass again on the retry."""
    window = DedupeWindow(100)
    window.filter([row(0, "a")])
    fresh, _ = window.filter([row(0, "a")])
    assert len(fresh) == 1


def test_memory_is_bounded_and_recent_ids_are_kept() -> None:
    window = DedupeWindow(10)
    for i in range(100):
        window.remember([("app", "d1", str(i))])
        assert len(window) <= 20
    assert ("app", "d1", "99") in window and ("app", "d1", "90") in window
    assert ("app", "d1", "0") not in window


def test_a_batch_filtered_in_parts_shares_its_keys() -> None:
    window = DedupeWindow(100)
    fresh, keys = window.filter([row(0, "a"), row(1, "b")])
    more, same = window.filter([row(2, "a"), row(3, "c")], keys)
    assert [r[0] for r in fresh + more] == [0, 1, 3]
    assert same is keys and keys == {("app", "d1", m) for m in "abc"}
