"""Rules that need the whole document set: references, cycles, depths, inherited names."""

from __future__ import annotations

from typing import Any

import pytest

from aislehub.models import ModelErrors, parse_models
from tests.models import samples
from tests.models.samples import CONTROLLER, DEVICE_INFO, THERMOSTAT, interface

RESOLVE_RULES = {
    "extends-unresolved",
    "extends-class",
    "extends-cycle",
    "extends-depth",
    "extends-count",
    "component-unresolved",
    "component-class",
    "component-nested",
    "schema-scope",
}


def errors(documents: list[Any]) -> list[tuple[str, str]]:
    with pytest.raises(ModelErrors) as caught:
        parse_models(documents)
    return [(e.path, e.rule) for e in caught.value.errors]


def iface(n: int, extends: Any = None, version: int = 2, **more: Any) -> dict[str, Any]:
    contents = [{"@type": "Property", "name": f"p{n}", "schema": "string"}]
    extra = {"extends": extends} if extends is not None else {}
    return interface(f"dtmi:ex:I{n};1", contents, version, **extra, **more)


def chain(length: int, version: int = 2) -> list[dict[str, Any]]:
    """I0 extends I1 extends … I(length-1): ``length - 1`` levels of extends."""
    return [
        iface(n, f"dtmi:ex:I{n + 1};1" if n + 1 < length else None, version) for n in range(length)
    ]


def test_unresolved_ids_are_errors_with_their_paths() -> None:
    documents = [samples.controller()]  # Thermostat and DeviceInformation are missing
    assert errors(documents) == [
        (f"{CONTROLLER} / contents[3] (thermostat1) / schema", "component-unresolved"),
        (f"{CONTROLLER} / contents[4] (thermostat2) / schema", "component-unresolved"),
        (f"{CONTROLLER} / contents[5] (deviceInformation) / schema", "component-unresolved"),
    ]
    assert errors([iface(0, "dtmi:ex:Nowhere;1")]) == [
        ("dtmi:ex:I0;1 / extends", "extends-unresolved")
    ]


def test_references_to_non_interfaces() -> None:
    doc = iface(
        0,
        "dtmi:ex:I0:thing;1",
        schemas=[
            {
                "@id": "dtmi:ex:I0:thing;1",
                "@type": "Object",
                "fields": [{"name": "a", "schema": "long"}],
            }
        ],
    )
    assert errors([doc]) == [("dtmi:ex:I0;1 / extends", "extends-class")]
    doc = iface(
        1,
        schemas=[
            {
                "@id": "dtmi:ex:I1:thing;1",
                "@type": "Enum",
                "valueSchema": "string",
                "enumValues": [{"name": "a", "enumValue": "a"}],
            }
        ],
    )
    doc["contents"].append({"@type": "Component", "name": "c", "schema": "dtmi:ex:I1:thing;1"})
    assert errors([doc]) == [("dtmi:ex:I1;1 / contents[1] (c) / schema", "component-class")]
    doc["contents"][1]["schema"] = "double"
    assert errors([doc]) == [("dtmi:ex:I1;1 / contents[1] (c) / schema", "component-class")]


def test_extends_cycle_reported_once() -> None:
    found = errors([iface(0, "dtmi:ex:I1;1"), iface(1, "dtmi:ex:I2;1"), iface(2, "dtmi:ex:I0;1")])
    assert found == [("dtmi:ex:I2;1 / extends", "extends-cycle")]
    assert errors([iface(0, "dtmi:ex:I0;1")]) == [("dtmi:ex:I0;1 / extends", "extends-cycle")]


@pytest.mark.parametrize("version", [2, 3])
def test_extends_depth_limit(version: int) -> None:
    parse_models(chain(11, version))  # 10 levels: the limit
    assert errors(chain(12, version)) == [("dtmi:ex:I0;1 / extends", "extends-depth")]


def test_v2_extends_at_most_two() -> None:
    three = [f"dtmi:ex:I{n};1" for n in (1, 2, 3)]
    found = errors([iface(0, three), iface(1), iface(2), iface(3)])
    assert found == [("dtmi:ex:I0;1 / extends", "extends-count")]
    parse_models(
        [iface(0, three, version=3), iface(1, version=3), iface(2, version=3), iface(3, version=3)]
    )


def test_components_do_not_nest() -> None:
    controller = samples.controller()
    wrapper = interface(
        "dtmi:ex:Wrapper;1", [{"@type": "Component", "name": "ctl", "schema": CONTROLLER}]
    )
    found = errors([wrapper, controller, samples.thermostat(), samples.device_information()])
    assert found == [("dtmi:ex:Wrapper;1 / contents[0] (ctl) / schema", "component-nested")]


def test_component_of_itself_is_nested() -> None:
    me = interface("dtmi:ex:Me;1", [{"@type": "Component", "name": "me", "schema": "dtmi:ex:Me;1"}])
    assert errors([me]) == [("dtmi:ex:Me;1 / contents[0] (me) / schema", "component-nested")]


def test_inherited_name_clash() -> None:
    base = samples.thermostat()
    child = interface(
        "dtmi:ex:Child;1",
        [{"@type": "Telemetry", "name": "temperature", "schema": "float"}],
        extends=THERMOSTAT,
    )
    assert errors([child, base]) == [
        ("dtmi:ex:Child;1 / contents[0] (temperature) / name", "name-unique")
    ]


def test_two_bases_clash() -> None:
    a, b = iface(1), iface(2)
    b["contents"][0]["name"] = "p1"
    found = errors([iface(0, ["dtmi:ex:I1;1", "dtmi:ex:I2;1"]), a, b])
    assert found == [("dtmi:ex:I0;1 / extends / name", "name-unique")]


def test_contents_limit_counts_inherited_v2() -> None:
    base = interface(
        "dtmi:ex:Big;1",
        [{"@type": "Property", "name": f"p{i}", "schema": "long"} for i in range(200)],
    )
    child = interface(
        "dtmi:ex:Child;1",
        [{"@type": "Property", "name": f"q{i}", "schema": "long"} for i in range(101)],
        extends="dtmi:ex:Big;1",
    )
    assert errors([child, base]) == [("dtmi:ex:Child;1 / contents", "contents-count")]


def test_reusable_schemas_stay_in_their_interface() -> None:
    owner = iface(
        1,
        schemas=[
            {
                "@id": "dtmi:ex:I1:kind;1",
                "@type": "Enum",
                "valueSchema": "integer",
                "enumValues": [{"name": "a", "enumValue": 1}],
            }
        ],
    )
    user = iface(0, "dtmi:ex:I1;1")
    user["contents"][0]["schema"] = "dtmi:ex:I1:kind;1"
    assert errors([user, owner]) == [("dtmi:ex:I0;1 / contents[0] (p0) / schema", "schema-scope")]


def test_mixed_versions_controller_set() -> None:
    documents = [samples.controller(3), samples.thermostat(2), samples.device_information(3)]
    model = parse_models(documents).root(CONTROLLER)
    assert model.components["deviceInformation"].id == DEVICE_INFO


def test_hostile_depths_give_errors_not_recursion_errors() -> None:
    long_chain = chain(1500)
    assert ("dtmi:ex:I0;1 / extends", "extends-depth") in errors(long_chain)
    deep_schema: Any = "boolean"
    for _ in range(2000):
        deep_schema = {"@type": "Array", "elementSchema": deep_schema}
    found = errors(
        [interface("dtmi:ex:D;1", [{"@type": "Telemetry", "name": "t", "schema": deep_schema}])]
    )
    assert {rule for _, rule in found} == {"schema-depth"}
    inline: Any = {"@type": "Interface", "@id": "dtmi:ex:N0;1"}
    for n in range(1, 1500):
        inline = {"@type": "Interface", "@id": f"dtmi:ex:N{n};1", "extends": inline}
    assert "extends-depth" in {
        rule for _, rule in errors([interface("dtmi:ex:Top;1", [], extends=inline)])
    }
    assert errors(["[" * 5000]) == [("documents[0]", "document-shape")]
