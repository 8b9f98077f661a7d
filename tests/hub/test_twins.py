from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from aislehub.hub.property_view import properties_view
from aislehub.hub.twins import (
    apply_desired,
    apply_reported,
    merge_patch,
    twin_document,
)
from aislehub.store.metadata import Twin

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=10,
)
objects = st.dictionaries(st.text(max_size=4), json_values, max_size=5)


def test_merge_patch_follows_rfc_7386() -> None:
    target = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2]}
    patch = {"a": None, "b": {"c": None, "x": 9}, "e": [3], "f": {"g": None}}
    assert merge_patch(target, patch) == {"b": {"d": 3, "x": 9}, "e": [3], "f": {}}
    assert target["a"] == 1  # the input is not mutated


@given(objects, objects)
def test_merge_patch_is_idempotent(target: dict[str, object], patch: dict[str, object]) -> None:
    once = merge_patch(target, patch)
    assert merge_patch(once, patch) == once


def test_versions_grow_per_side_and_the_document_carries_them() -> None:
    twin = apply_reported(Twin(), {"fw": "1.0"}, NOW)
    twin = apply_desired(twin, {"setpoint": 4}, NOW)
    twin = apply_desired(twin, {"setpoint": 5}, NOW)
    doc = twin_document(twin)
    assert doc["reported"] == {"fw": "1.0", "$version": 2}
    assert doc["desired"] == {"setpoint": 5, "$version": 3}


def test_properties_view_has_components_and_desired_metadata() -> None:
    twin = apply_reported(
        Twin(), {"serial": "SN-1", "thermostat1": {"__t": "c", "maxTemp": 24.1}}, NOW
    )
    twin = apply_desired(twin, {"thermostat1": {"__t": "c", "target": 21}}, NOW)
    view = properties_view(twin)
    assert view["serial"] == "SN-1"
    assert view["$metadata"]["serial"]["lastUpdateTime"] == "2026-01-02T03:04:05.000Z"
    component = view["thermostat1"]
    assert component["maxTemp"] == 24.1
    assert component["$metadata"]["target"] == {"desiredValue": 21, "desiredVersion": 2}
