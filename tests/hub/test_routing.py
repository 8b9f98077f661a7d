"""Routing subjects and presence: ids of any shape stay one token and come back intact."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from aislehub.hub.links import LinkRegistry
from aislehub.hub.routing import (
    Presence,
    decode_token,
    device_subject,
    encode_token,
    parse_device_subject,
    route_root,
)

ROOT = route_root("aislehub-ingest")


@given(st.text())
def test_token_round_trip_and_is_one_safe_token(value: str) -> None:
    token = encode_token(value)
    assert decode_token(token) == value
    assert token and not any(c in token for c in ".*> \t\r\n")


@given(st.text(), st.text())
def test_distinct_ids_never_share_a_token(a: str, b: str) -> None:
    assert (encode_token(a) == encode_token(b)) == (a == b)


def test_subjects_of_ids_nats_treats_specially() -> None:
    key = ("app.1", "cooler.*>", "")
    subject = device_subject(ROOT, key, "method")
    assert subject.count(".") == ROOT.count(".") + 4
    assert parse_device_subject(ROOT, subject) == (key, "method")
    assert encode_token("") == "~" and encode_token("~") != "~"
    assert encode_token("cooler-1_a") == "cooler-1_a"  # the common case stays readable


def test_foreign_or_malformed_subjects_are_ignored() -> None:
    assert parse_device_subject(ROOT, "aislehub.aislehub-ingest.a.b") is None
    assert parse_device_subject(ROOT, f"{ROOT}.a.b.~.explode") is None
    assert parse_device_subject(ROOT, f"{ROOT}.a.b.method") is None
    assert parse_device_subject(ROOT, f"{ROOT}.a.%ZZ.~.c2d") is None
    assert route_root("other") != ROOT


class _Link:
    def __init__(self, activity: float) -> None:
        self.activity = activity

    def publish(self, topic: str, payload: bytes, qos: int = 1, on_ack: object = None) -> None:
        pass

    def close(self, reason: str) -> None:
        pass

    def last_activity(self) -> float:
        return self.activity


def test_presence_merges_modules_and_the_newest_activity() -> None:
    links = LinkRegistry()
    links.attach(("a", "d", ""), _Link(10.0))
    links.attach(("a", "d", "m1"), _Link(11.0))
    links.attach(("a", "other", ""), _Link(12.0))
    here = Presence.of(links, "a", "d")
    assert (here.connected, here.activity, here.modules) == (True, 10.0, {"m1"})
    elsewhere = Presence.from_json(Presence(None, {"m2"}, False).to_json())
    merged = here.merge(elsewhere).merge(Presence(20.0, set(), True))
    assert (merged.connected, merged.activity, merged.modules) == (True, 20.0, {"m1", "m2"})
    assert not Presence.of(links, "a", "nobody").connected
    assert links.attached_since(("a", "d", "")) is not None
