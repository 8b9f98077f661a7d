"""Conformance suite for :class:`aislehub.store.metadata.MetadataStore` on every database.

The store is one SQLAlchemy Core implementation; what differs between backends is the
database under it (types, JSON operators, NULL and collation rules, autoincrement,
transactional DDL). Each backend in ``BACKENDS`` yields store URLs: ``sqlite`` a file per
test; ``postgres`` one fresh database per module on the machine's server (see
``tests/services.py``), emptied after each test and dropped at the end.

The calls are the ones the hub, the API and the CLI make; the migration checks run here
too, so the Alembic history is proven on both databases.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from aislehub.hub.twins import apply_reported
from aislehub.query.device_filter import parse_device_filter
from aislehub.store.cloud_properties import CloudValues
from aislehub.store.device_filter_sql import filter_clause
from aislehub.store.device_groups import DeviceGroup
from aislehub.store.metadata import (
    ApiToken,
    App,
    Device,
    EnrollmentGroup,
    MetadataStore,
    Twin,
    utcnow,
)
from aislehub.store.migrate import MIGRATIONS
from aislehub.store.schema import metadata
from aislehub.store.templates import TemplateRecord
from tests.services import postgres_database

KEY = base64.b64encode(b"k" * 32).decode()
T0 = datetime(2026, 3, 4, 5, 6, 7, 123000, tzinfo=UTC)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


def _empty(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        tables = ", ".join(t.name for t in metadata.sorted_tables)
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {tables}, alembic_version CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database: the store creates its schema by migrating."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'metadata.sqlite'}"
        return
    url = request.getfixturevalue("postgres_url")
    yield url
    _empty(url)


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    opened = MetadataStore(store_url)
    opened.create_app(App("app", "App", "app", "0ne0000000A"))
    opened.create_app(App("other", "Other", "other", "0ne0000000B"))
    yield opened
    opened.close()


def ids(devices: list[Device]) -> list[str]:
    return [d.id for d in devices]


# -- schema and migrations ----------------------------------------------------------------


def _upgrade(engine: sa.Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_migrations_build_exactly_the_schema(store_url: str) -> None:
    store = MetadataStore(store_url)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    store.close()
    assert diff == []


def test_reopening_a_migrated_database_changes_nothing(store_url: str) -> None:
    MetadataStore(store_url).close()
    store = MetadataStore(store_url)
    assert store.list_apps() == []
    store.close()


def test_0002_keeps_twins_written_at_0001(store_url: str) -> None:
    engine = sa.create_engine(store_url)
    _upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO twins VALUES ('a', 'd', '', '{\"x\": 1}', 2, '{}', '{}', 1, '{}')")
        )
    engine.dispose()
    store = MetadataStore(store_url)
    twin = store.get_twin("a", "d")
    store.close()
    assert twin.desired == {"x": 1} and twin.desired_version == 2
    assert twin.desired_versions == {}


# -- apps and tokens ----------------------------------------------------------------------


def test_apps(store: MetadataStore) -> None:
    assert store.get_app("app") == App("app", "App", "app", "0ne0000000A")
    assert store.app_by_scope("0NE0000000a") == store.get_app("app")  # scope is case-blind
    assert store.get_app("ghost") is None and store.app_by_scope("0ne") is None
    assert [a.id for a in store.list_apps()] == ["app", "other"]  # in creation order
    with pytest.raises(sa.exc.IntegrityError):
        store.create_app(App("third", "T", "app", "0ne0000000C"))  # subdomain taken


def test_tokens(store: MetadataStore) -> None:
    expiry = T0 + timedelta(days=365)
    roles: list[dict[str, Any]] = [{"role": "admin"}]
    store.put_token(ApiToken("app", "t1", roles, expiry), "h1")
    store.put_token(ApiToken("app", "t0", [], expiry), "h0")
    assert store.token_by_hash("h1") == ApiToken("app", "t1", roles, expiry)
    assert store.get_token("app", "t1") == store.token_by_hash("h1")
    assert store.get_token("other", "t1") is None
    assert [t.id for t in store.list_tokens("app")] == ["t0", "t1"]
    store.put_token(ApiToken("app", "t1", [], expiry), "h2")  # replaces, new secret
    assert store.token_by_hash("h1") is None and store.token_by_hash("h2") is not None
    assert store.delete_token("app", "t1") is True
    assert store.delete_token("app", "t1") is False
    assert [t.id for t in store.list_tokens("app")] == ["t0"]


# -- enrollment groups and devices --------------------------------------------------------


def test_enrollment_groups(store: MetadataStore) -> None:
    attestation = {"type": "symmetricKey", "symmetricKey": {"primaryKey": KEY}}
    generation = store.generation
    group = store.put_group(EnrollmentGroup("app", "g2", "Two", "iot", True, attestation))
    store.put_group(EnrollmentGroup("app", "g1", "One", "iotEdge", False))
    assert store.generation > generation
    assert store.get_group("app", "g2") == group
    assert [g.id for g in store.list_groups("app")] == ["g1", "g2"]
    assert store.list_groups("other") == []
    assert store.delete_group("app", "g1") is True and store.delete_group("app", "g1") is False
    assert store.get_group("app", "g1") is None


def test_device_round_trip(store: MetadataStore) -> None:
    device = Device(
        "app",
        "d1",
        "Cooler 1",
        template="dtmi:contoso:cooler;1",
        provisioned=True,
        organizations=["store-12"],
        attestation={"type": "symmetricKey", "symmetricKey": {"primaryKey": KEY}},
        enrollment_group_id="g1",
        model_id="dtmi:contoso:cooler;1",
        created_at=T0,
        provisioned_at=T0 + timedelta(seconds=1),
    )
    store.put_device(device)
    stored = store.get_device("app", "d1")
    assert stored == device  # every field, datetimes as aware UTC instants
    assert stored is not None and stored.created_at.utcoffset() == timedelta(0)
    assert store.get_device("other", "d1") is None
    device.display_name = "Renamed"
    old_etag = device.etag
    store.put_device(device)
    renamed = store.get_device("app", "d1")
    assert renamed is not None and renamed.display_name == "Renamed"
    assert renamed.etag != old_etag


def test_devices_page_by_id_per_app(store: MetadataStore) -> None:
    names = ["b", "a", "B", "A", "c-1", "c_1", "10", "9", "é"]
    for name in names:
        store.put_device(Device("app", name, name))
    store.put_device(Device("other", "zz", "zz"))
    everything = ids(store.list_devices("app", 0, 100))
    assert everything == sorted(names)  # by code point on every database
    assert ids(store.list_devices("app", 2, 3)) == sorted(names)[2:5]
    assert store.count_devices("app") == len(names) and store.count_devices("other") == 1


def test_deleting_a_device_removes_what_hangs_off_it(store: MetadataStore) -> None:
    store.put_device(Device("app", "d1", "d1"))
    store.save_twin("app", "d1", "", Twin(desired={"x": 1}))
    store.enqueue_c2d("app", "d1", {}, b"hi", utcnow() + timedelta(minutes=5))
    store.add_command("app", "d1", "", "", "reboot", {"id": "c1", "status": "ok"})
    store.cloud.save("app", "d1", CloudValues({"site": "Lyon"}, {}))
    store.put_device(Device("app", "d2", "d2"))
    store.save_twin("app", "d2", "", Twin(desired={"y": 2}))
    assert store.delete_device("app", "d1") is True
    assert store.delete_device("app", "d1") is False
    assert store.get_twin("app", "d1") == Twin()
    assert store.pending_c2d("app", "d1", utcnow()) == []
    assert store.command_history("app", "d1", "", "", "reboot") == []
    assert store.cloud.get("app", "d1") == CloudValues()
    assert store.get_twin("app", "d2").desired == {"y": 2}


# -- device-group filters -----------------------------------------------------------------

CONTROLLER = "dtmi:contoso:controller;1"


def _fleet(store: MetadataStore) -> None:
    """c1, c2 provisioned controllers (c2 simulated), c3 registered only, u1 unassociated."""
    for device_id, provisioned, simulated in (("c1", 1, 0), ("c2", 1, 1), ("c3", 0, 0)):
        device = Device("app", device_id, device_id.upper(), template=CONTROLLER)
        device.provisioned, device.simulated = bool(provisioned), bool(simulated)
        device.organizations = ["plant-a"] if device_id == "c1" else []
        store.put_device(device)
    store.put_device(Device("app", "u1", "U1"))
    for device_id, target in (("c1", 21.5), ("c2", 18)):
        ack = {"value": target, "ac": 200, "av": 2}
        patch = {
            "thermostat1": {"__t": "c", "targetTemperature": ack},
            "fw": f"{device_id}-1.0",
            "online": device_id == "c1",
            "rssi": -40 if device_id == "c1" else "weak",  # a device may report any type
        }
        store.save_twin("app", device_id, "", apply_reported(Twin(), patch, T0))
    store.cloud.save("app", "c3", CloudValues({"site": "Lyon", "rssi": -70}, {}))
    store.put_device(Device("other", "b1", "B1", provisioned=True))


@pytest.mark.parametrize(
    ("where", "members"),
    [
        (f'$template = "{CONTROLLER}" AND $provisioned = true', ["c1", "c2"]),
        ("$simulated = false AND $enabled = true", ["c1", "c3", "u1"]),
        ("thermostat1.targetTemperature > 20", ["c1"]),
        ("thermostat1.targetTemperature <= 18", ["c2"]),
        ('fw = "c2-1.0" OR site = "Lyon"', ["c2", "c3"]),
        ('$organizations = "plant-a"', ["c1"]),
        ("NOT ($provisioned = true)", ["c3", "u1"]),
        ("$id in ['u1', 'c3', 'b1']", ["c3", "u1"]),
        ('$displayName != "C1"', ["c2", "c3", "u1"]),
        ("online = true", ["c1"]),
        ("online = false", ["c2"]),
        ("rssi < -50", ["c3"]),  # the cloud property, where the twin has none
        ("rssi > -50", ["c1"]),  # c2's "weak" is not a number: no match, no error
        ('rssi = "weak"', ["c2"]),
        ("fw = 1", []),
        ('fw IN ("c1-1.0", "nope")', ["c1"]),
    ],
)
def test_device_filters_select_the_same_members(
    store: MetadataStore, where: str, members: list[str]
) -> None:
    _fleet(store)
    clause = filter_clause(parse_device_filter(f"SELECT * FROM devices WHERE {where}"))
    assert ids(store.list_devices("app", 0, 100, clause)) == members
    assert ids(store.list_devices("app", 1, 1, clause)) == members[1:2]


def test_filter_by_template_source(store: MetadataStore) -> None:
    _fleet(store)
    clause = filter_clause(parse_device_filter(f"SELECT * FROM {CONTROLLER}"))
    assert ids(store.list_devices("app", 0, 100, clause)) == ["c1", "c2", "c3"]


# -- twins, C2D, commands, events ---------------------------------------------------------


def test_twins_per_module(store: MetadataStore) -> None:
    assert store.get_twin("app", "d1") == Twin()
    twin = Twin(
        desired={"a": {"b": [1, 2.5, None, True]}, "s": "ü"},
        desired_version=3,
        desired_updated={"a": "2026-01-01T00:00:00.000Z"},
        reported={"fw": "1.0"},
        reported_version=2,
        reported_updated={"fw": "2026-01-01T00:00:00.000Z"},
        desired_versions={"a": 3},
    )
    store.save_twin("app", "d1", "", twin)
    store.save_twin("app", "d1", "m1", Twin(reported={"module": True}))
    assert store.get_twin("app", "d1") == twin
    assert store.get_twin("app", "d1", "m1").reported == {"module": True}
    assert store.get_twin("other", "d1") == Twin()


def test_c2d_queue(store: MetadataStore) -> None:
    now = utcnow()
    first = store.enqueue_c2d("app", "d1", {"k": "v"}, b"\x00one", now + timedelta(minutes=1))
    gone = store.enqueue_c2d("app", "d1", {}, b"late", now + timedelta(seconds=1))
    third = store.enqueue_c2d("app", "d1", {}, b"three", now + timedelta(minutes=1))
    store.enqueue_c2d("app", "d2", {}, b"other", now + timedelta(minutes=1))
    assert first < gone < third
    assert store.devices_with_pending_c2d() == {("app", "d1"), ("app", "d2")}
    pending = store.pending_c2d("app", "d1", now + timedelta(seconds=2))
    assert [(m.seq, m.properties, m.payload) for m in pending] == [
        (first, {"k": "v"}, b"\x00one"),
        (third, {}, b"three"),
    ]
    assert pending[0].expires_at.tzinfo is not None
    store.complete_c2d(first)
    assert [m.seq for m in store.pending_c2d("app", "d1", now)] == [third]  # expired stays so
    store.complete_c2d(third)
    assert store.devices_with_pending_c2d() == {("app", "d2")}


def test_command_history_keeps_the_latest_per_command(store: MetadataStore) -> None:
    store.add_command("app", "d1", "", "", "reboot", {"id": "r1", "n": 1})
    store.add_command("app", "d1", "", "", "reboot", {"id": "r2", "n": 2})
    store.add_command("app", "d1", "", "thermostat1", "reboot", {"id": "r3", "n": 3})
    assert store.command_history("app", "d1", "", "", "reboot") == [{"id": "r2", "n": 2}]
    assert store.command_history("app", "d1", "", "thermostat1", "reboot") == [{"id": "r3", "n": 3}]
    assert store.command_history("other", "d1", "", "", "reboot") == []


def test_events_keep_their_order(store: MetadataStore) -> None:
    store.add_event("app", "d1", "provisioned", {"by": "dps"})
    store.add_events(
        [
            ("app", "d1", "connected", {"n": 1}, T0),
            ("app", "d2", "connected", {}, T0),
            ("app", "d1", "disconnected", {"n": 2}, T0 + timedelta(seconds=1)),
        ]
    )
    store.add_events([])
    events = store.events("app", "d1")
    assert [(kind, detail) for kind, detail, _ in events] == [
        ("provisioned", {"by": "dps"}),
        ("connected", {"n": 1}),
        ("disconnected", {"n": 2}),
    ]
    assert events[1][2] == T0


# -- templates, device groups, cloud properties -------------------------------------------


def _template(template_id: str, model: str, name: str = "T") -> TemplateRecord:
    document = {"@id": template_id, "displayName": name, "capabilityModel": {"@id": model}}
    return TemplateRecord("app", template_id, document, model, display_name=name)


def test_templates_are_versioned(store: MetadataStore) -> None:
    templates = store.templates
    first = templates.put(_template("dtmi:t:one;1", "dtmi:m:one;1", "One"))
    assert first.version == 1
    second = templates.put(_template("dtmi:t:one;1", "dtmi:m:one;1", "One v2"))
    assert second.version == 2 and second.created_at == first.created_at
    stored = templates.get("app", "dtmi:t:one;1")
    assert stored is not None and stored.document["displayName"] == "One v2"
    assert stored.version == 2 and stored.etag == second.etag
    versions = templates.versions("app", "dtmi:t:one;1", 0, 10)
    assert [v.version for v in versions] == [2, 1]
    assert versions[1].document["displayName"] == "One"
    assert templates.exists("app", "dtmi:t:one;1") and not templates.exists("other", "x")
    templates.put(_template("dtmi:t:a;1", "dtmi:m:a;1"))
    assert [t.id for t in templates.page("app", 0, 10)] == ["dtmi:t:a;1", "dtmi:t:one;1"]
    assert templates.delete("app", "dtmi:t:one;1") is True
    assert templates.versions("app", "dtmi:t:one;1", 0, 10) == []
    assert templates.delete("app", "dtmi:t:one;1") is False


def test_templates_and_the_devices_that_use_them(store: MetadataStore) -> None:
    templates = store.templates
    templates.put(_template("dtmi:t:cooler;1", "dtmi:m:cooler;1"))
    templates.put(_template("dtmi:m:cooler;1", "dtmi:m:other;1"))
    assert templates.match("app", "dtmi:m:cooler;1") == "dtmi:m:cooler;1"  # the id first
    assert templates.match("app", "dtmi:m:other;1") == "dtmi:m:cooler;1"
    assert templates.match("app", "dtmi:none;1") is None
    store.put_device(Device("app", "d1", "d1"))
    store.put_device(Device("app", "d2", "d2", template="dtmi:t:cooler;1"))
    store.put_device(Device("app", "d3", "d3", model_id="dtmi:m:late;1"))
    assert templates.note_model("app", "d1", "dtmi:m:x;1", "dtmi:t:cooler;1") is True
    assert templates.note_model("app", "d2", "dtmi:m:x;1", "dtmi:m:cooler;1") is False
    assert templates.devices_using("app", "dtmi:t:cooler;1") == 2
    assert templates.assign_unassociated("app", ["dtmi:m:late;1"], "dtmi:t:cooler;1") == ["d3"]
    assert templates.assign_unassociated("app", ["dtmi:m:late;1"], "dtmi:t:cooler;1") == []
    device = store.get_device("app", "d1")
    assert device is not None and device.model_id == "dtmi:m:x;1"


def test_device_groups(store: MetadataStore) -> None:
    groups = store.groups
    for group_id in ("b", "a", "c"):
        groups.put(DeviceGroup("app", group_id, group_id.upper(), "SELECT * FROM devices"))
    stored = groups.get("app", "a")
    assert stored is not None and stored.display_name == "A" and stored.organizations == []
    assert stored.created_at.tzinfo is not None
    assert [g.id for g in groups.page("app", 1, 5)] == ["b", "c"]
    assert groups.get("other", "a") is None
    assert groups.delete("app", "a") is True and groups.delete("app", "a") is False


def test_cloud_properties(store: MetadataStore) -> None:
    assert store.cloud.get("app", "d1") == CloudValues()
    values = CloudValues({"site": "Lyon", "capacity": 12.5, "tags": ["a"]}, {"site": "t"})
    store.cloud.save("app", "d1", values)
    assert store.cloud.get("app", "d1") == values
    assert store.cloud.get("other", "d1") == CloudValues()


def test_a_second_store_on_the_same_database_sees_the_writes(store_url: str) -> None:
    """Two processes share one database in the scale-out build."""
    one, two = MetadataStore(store_url), MetadataStore(store_url)
    one.create_app(App("app", "App", "app", "0ne0000000A"))
    one.put_device(Device("app", "d1", "d1"))
    assert ids(two.list_devices("app")) == ["d1"]
    one.close()
    two.close()


def test_stores_opened_at_once_migrate_once(store_url: str) -> None:
    """Gateway processes starting together all open the store on an empty database."""
    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: MetadataStore(store_url), range(4)))
    stores[0].create_app(App("app", "App", "app", "0ne0000000A"))
    assert [a.id for a in stores[3].list_apps()] == ["app"]
    for opened in stores:
        opened.close()
