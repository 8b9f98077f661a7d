"""The metadata store: apps, tokens, enrollment groups, devices, twins, C2D queue, history.

SQLAlchemy Core over SQLite (WAL) in the embedded build; the same schema runs on PostgreSQL.
Every method takes ``app_id`` first: callers pass the app of the authenticated principal.
Calls are short and synchronous; they run on the event loop thread, which is the only
writer, so SQLite never sees two writers at once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from aislehub.store import migrate
from aislehub.store.cloud_properties import CloudPropertyStore
from aislehub.store.device_groups import DeviceGroupStore
from aislehub.store.rows import Json as Json
from aislehub.store.rows import Tables, new_etag
from aislehub.store.rows import aware as _aware
from aislehub.store.rows import utcnow as utcnow
from aislehub.store.schema import (
    api_tokens,
    apps,
    c2d_messages,
    cloud_properties,
    command_history,
    device_events,
    device_templates,
    devices,
    enrollment_groups,
    twins,
)
from aislehub.store.templates import TemplateStore


@dataclass(slots=True)
class App:
    id: str
    name: str
    subdomain: str
    id_scope: str


@dataclass(slots=True)
class Device:
    app_id: str
    id: str
    display_name: str
    template: str | None = None
    enabled: bool = True
    provisioned: bool = False
    simulated: bool = False
    organizations: list[str] = field(default_factory=list)
    attestation: Json | None = None
    enrollment_group_id: str | None = None
    model_id: str | None = None
    etag: str = field(default_factory=new_etag)
    created_at: datetime = field(default_factory=utcnow)
    provisioned_at: datetime | None = None
    last_updated_at: datetime = field(default_factory=utcnow)


@dataclass(slots=True)
class EnrollmentGroup:
    app_id: str
    id: str
    display_name: str
    type: str = "iot"
    enabled: bool = True
    attestation: Json = field(default_factory=dict)
    etag: str = field(default_factory=new_etag)


@dataclass(slots=True)
class Twin:
    desired: Json = field(default_factory=dict)
    desired_version: int = 1
    desired_updated: dict[str, str] = field(default_factory=dict)
    reported: Json = field(default_factory=dict)
    reported_version: int = 1
    reported_updated: dict[str, str] = field(default_factory=dict)
    # property path ("p" or "component/p") -> the desired $version that last wrote it
    desired_versions: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class ApiToken:
    app_id: str
    id: str
    roles: list[Json]
    expiry: datetime


@dataclass(slots=True)
class C2DMessage:
    seq: int
    properties: dict[str, str]
    payload: bytes
    expires_at: datetime


def _row(obj: Any, table: sa.Table) -> Json:
    return {c.name: getattr(obj, c.name) for c in table.columns if hasattr(obj, c.name)}


class MetadataStore(Tables):
    """Devices, twins and the rest; ``templates``, ``groups`` and ``cloud`` hold the
    device templates, device groups and cloud properties over the same engine."""

    def __init__(self, url: str) -> None:
        # Bumped by every write to devices or enrollment groups (and by the hub when it
        # writes templates or assigns one): caches of credentials and the typing catalog
        # compare it to know they are stale.
        self.generation = 0
        engine = sa.create_engine(url)
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        migrate.upgrade(engine)
        super().__init__(engine)
        self.templates = TemplateStore(engine)
        self.groups = DeviceGroupStore(engine)
        self.cloud = CloudPropertyStore(engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- apps --------------------------------------------------------------------------
    def create_app(self, app: App) -> App:
        self.generation += 1
        self._write(sa.insert(apps).values(**_row(app, apps), created_at=utcnow()))
        return app

    def get_app(self, app_id: str) -> App | None:
        return self._one_app(apps.c.id == app_id)

    def app_by_scope(self, id_scope: str) -> App | None:
        return self._one_app(sa.func.lower(apps.c.id_scope) == id_scope.lower())

    def list_apps(self) -> list[App]:
        cols = (apps.c.id, apps.c.name, apps.c.subdomain, apps.c.id_scope)
        return [App(*r) for r in self._rows(sa.select(*cols).order_by(apps.c.created_at))]

    def _one_app(self, where: sa.ColumnElement[bool]) -> App | None:
        cols = (apps.c.id, apps.c.name, apps.c.subdomain, apps.c.id_scope)
        row = next(self._rows(sa.select(*cols).where(where)), None)
        return App(*row) if row else None

    # -- API tokens --------------------------------------------------------------------
    def put_token(self, token: ApiToken, token_hash: str) -> None:
        key = (api_tokens.c.app_id == token.app_id) & (api_tokens.c.id == token.id)
        self._write(
            sa.delete(api_tokens).where(key),
            sa.insert(api_tokens).values(
                **_row(token, api_tokens), token_hash=token_hash, created_at=utcnow()
            ),
        )

    def token_by_hash(self, token_hash: str) -> ApiToken | None:
        return self._one_token(api_tokens.c.token_hash == token_hash)

    def get_token(self, app_id: str, token_id: str) -> ApiToken | None:
        return self._one_token((api_tokens.c.app_id == app_id) & (api_tokens.c.id == token_id))

    def list_tokens(self, app_id: str) -> list[ApiToken]:
        stmt = self._token_select().where(api_tokens.c.app_id == app_id).order_by(api_tokens.c.id)
        return [ApiToken(r[0], r[1], r[2], _aware(r[3]) or utcnow()) for r in self._rows(stmt)]

    def delete_token(self, app_id: str, token_id: str) -> bool:
        key = (api_tokens.c.app_id == app_id) & (api_tokens.c.id == token_id)
        with self.engine.begin() as conn:
            return conn.execute(sa.delete(api_tokens).where(key)).rowcount > 0

    @staticmethod
    def _token_select() -> sa.Select[Any]:
        c = api_tokens.c
        return sa.select(c.app_id, c.id, c.roles, c.expiry)

    def _one_token(self, where: sa.ColumnElement[bool]) -> ApiToken | None:
        row = next(self._rows(self._token_select().where(where)), None)
        return ApiToken(row[0], row[1], row[2], _aware(row[3]) or utcnow()) if row else None

    # -- enrollment groups -------------------------------------------------------------
    def put_group(self, group: EnrollmentGroup) -> EnrollmentGroup:
        self.generation += 1
        group.etag = new_etag()
        key = (enrollment_groups.c.app_id == group.app_id) & (enrollment_groups.c.id == group.id)
        self._write(
            sa.delete(enrollment_groups).where(key),
            sa.insert(enrollment_groups).values(**_row(group, enrollment_groups)),
        )
        return group

    def get_group(self, app_id: str, group_id: str) -> EnrollmentGroup | None:
        c = enrollment_groups.c
        groups = self._groups((c.app_id == app_id) & (c.id == group_id))
        return groups[0] if groups else None

    def list_groups(self, app_id: str) -> list[EnrollmentGroup]:
        return self._groups(enrollment_groups.c.app_id == app_id)

    def delete_group(self, app_id: str, group_id: str) -> bool:
        self.generation += 1
        c = enrollment_groups.c
        with self.engine.begin() as conn:
            stmt = sa.delete(enrollment_groups).where((c.app_id == app_id) & (c.id == group_id))
            return conn.execute(stmt).rowcount > 0

    def _groups(self, where: sa.ColumnElement[bool]) -> list[EnrollmentGroup]:
        stmt = sa.select(enrollment_groups).where(where).order_by(enrollment_groups.c.id)
        return [EnrollmentGroup(**r._mapping) for r in self._rows(stmt)]

    # -- devices -----------------------------------------------------------------------
    def put_device(self, device: Device) -> Device:
        self.generation += 1
        device.etag = new_etag()
        device.last_updated_at = utcnow()
        key = (devices.c.app_id == device.app_id) & (devices.c.id == device.id)
        self._write(
            sa.delete(devices).where(key), sa.insert(devices).values(**_row(device, devices))
        )
        return device

    def get_device(self, app_id: str, device_id: str) -> Device | None:
        found = self._devices((devices.c.app_id == app_id) & (devices.c.id == device_id), 0, 1)
        return found[0] if found else None

    def list_devices(
        self,
        app_id: str,
        offset: int = 0,
        limit: int = 25,
        where: sa.ColumnElement[bool] | None = None,
    ) -> list[Device]:
        """A page of the app's devices by id; ``where`` narrows them (device-group filters)."""
        clause = devices.c.app_id == app_id
        return self._devices(clause if where is None else clause & where, offset, limit)

    def device_catalog(self) -> list[tuple[str, str, str | None, bool, bool, bool]]:
        """(app, device, template, provisioned, simulated, enabled) of every device."""
        d = devices.c
        cols = (d.app_id, d.id, d.template, d.provisioned, d.simulated, d.enabled)
        return [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in self._rows(sa.select(*cols))]

    def catalog_fingerprint(self) -> tuple[object, ...]:
        """Changes whenever a device or a template is written, by any process."""
        d, t = devices.c, device_templates.c
        stmt = sa.select(
            sa.select(sa.func.count()).select_from(devices).scalar_subquery(),
            sa.select(sa.func.max(d.last_updated_at)).scalar_subquery(),
            sa.select(sa.func.count()).select_from(device_templates).scalar_subquery(),
            sa.select(sa.func.max(t.updated_at)).scalar_subquery(),
        )
        return tuple(next(self._rows(stmt)))

    def count_devices(self, app_id: str) -> int:
        stmt = sa.select(sa.func.count()).select_from(devices).where(devices.c.app_id == app_id)
        return int(next(self._rows(stmt))[0])

    def delete_device(self, app_id: str, device_id: str) -> bool:
        self.generation += 1
        with self.engine.begin() as conn:
            key = (devices.c.app_id == app_id) & (devices.c.id == device_id)
            gone = conn.execute(sa.delete(devices).where(key)).rowcount > 0
            tkey = (twins.c.app_id == app_id) & (twins.c.device_id == device_id)
            conn.execute(sa.delete(twins).where(tkey))
            ckey = (c2d_messages.c.app_id == app_id) & (c2d_messages.c.device_id == device_id)
            conn.execute(sa.delete(c2d_messages).where(ckey))
            hkey = (command_history.c.app_id == app_id) & (command_history.c.device_id == device_id)
            conn.execute(sa.delete(command_history).where(hkey))
            pkey = (cloud_properties.c.app_id == app_id) & (
                cloud_properties.c.device_id == device_id
            )
            conn.execute(sa.delete(cloud_properties).where(pkey))
            return gone

    def _devices(self, where: sa.ColumnElement[bool], offset: int, limit: int) -> list[Device]:
        stmt = sa.select(devices).where(where).order_by(devices.c.id).offset(offset).limit(limit)
        found = []
        for r in self._rows(stmt):
            d = Device(**r._mapping)
            d.created_at = _aware(d.created_at) or utcnow()
            d.last_updated_at = _aware(d.last_updated_at) or utcnow()
            d.provisioned_at = _aware(d.provisioned_at)
            found.append(d)
        return found

    # -- twins -------------------------------------------------------------------------
    def get_twin(self, app_id: str, device_id: str, module_id: str = "") -> Twin:
        c = twins.c
        stmt = sa.select(
            c.desired,
            c.desired_version,
            c.desired_updated,
            c.reported,
            c.reported_version,
            c.reported_updated,
            c.desired_versions,
        ).where((c.app_id == app_id) & (c.device_id == device_id) & (c.module_id == module_id))
        row = next(self._rows(stmt), None)
        return Twin(*row) if row else Twin()

    def save_twin(self, app_id: str, device_id: str, module_id: str, twin: Twin) -> None:
        c = twins.c
        key = (c.app_id == app_id) & (c.device_id == device_id) & (c.module_id == module_id)
        values = _row(twin, twins)
        self._write(
            sa.delete(twins).where(key),
            sa.insert(twins).values(
                app_id=app_id, device_id=device_id, module_id=module_id, **values
            ),
        )

    # -- cloud-to-device queue ---------------------------------------------------------
    def enqueue_c2d(
        self,
        app_id: str,
        device_id: str,
        props: Mapping[str, str],
        payload: bytes,
        expires_at: datetime,
    ) -> int:
        stmt = sa.insert(c2d_messages).values(
            app_id=app_id,
            device_id=device_id,
            properties=dict(props),
            payload=payload,
            expires_at=expires_at,
            state="pending",
        )
        with self.engine.begin() as conn:
            pk = conn.execute(stmt).inserted_primary_key
            return int(pk[0]) if pk else 0

    def pending_c2d(self, app_id: str, device_id: str, now: datetime) -> list[C2DMessage]:
        c = c2d_messages.c
        stmt = (
            sa.select(c.seq, c.properties, c.payload, c.expires_at)
            .where((c.app_id == app_id) & (c.device_id == device_id) & (c.state == "pending"))
            .order_by(c.seq)
        )
        msgs = [C2DMessage(r[0], r[1], r[2], _aware(r[3]) or now) for r in self._rows(stmt)]
        expired = [m.seq for m in msgs if m.expires_at <= now]
        if expired:
            self._write(sa.update(c2d_messages).where(c.seq.in_(expired)).values(state="expired"))
        return [m for m in msgs if m.expires_at > now]

    def complete_c2d(self, seq: int) -> None:
        c = c2d_messages.c
        self._write(sa.update(c2d_messages).where(c.seq == seq).values(state="completed"))

    # -- command history and device events --------------------------------------------
    def add_command(
        self, app_id: str, device_id: str, module_id: str, component: str, name: str, body: Json
    ) -> None:
        self._write(
            sa.delete(command_history).where(
                (command_history.c.app_id == app_id)
                & (command_history.c.device_id == device_id)
                & (command_history.c.module_id == module_id)
                & (command_history.c.component == component)
                & (command_history.c.name == name)
            ),
            sa.insert(command_history).values(
                app_id=app_id,
                id=body["id"],
                device_id=device_id,
                module_id=module_id,
                component=component,
                name=name,
                body=body,
                created_at=utcnow(),
            ),
        )

    def command_history(
        self, app_id: str, device_id: str, module_id: str, component: str, name: str
    ) -> list[Json]:
        c = command_history.c
        stmt = (
            sa.select(c.body)
            .where(
                (c.app_id == app_id)
                & (c.device_id == device_id)
                & (c.module_id == module_id)
                & (c.component == component)
                & (c.name == name)
            )
            .order_by(c.created_at.desc())
        )
        return [r[0] for r in self._rows(stmt)]

    def add_event(self, app_id: str, device_id: str, kind: str, detail: Json) -> None:
        self._write(
            sa.insert(device_events).values(
                app_id=app_id, device_id=device_id, kind=kind, detail=detail, at=utcnow()
            )
        )

    def add_events(self, rows: list[tuple[str, str, str, Json, datetime]]) -> None:
        """Insert many (app_id, device_id, kind, detail, at) events in one transaction."""
        if rows:
            keys = ("app_id", "device_id", "kind", "detail", "at")
            self._write(
                sa.insert(device_events).values([dict(zip(keys, r, strict=True)) for r in rows])
            )

    def devices_with_pending_c2d(self) -> set[tuple[str, str]]:
        c = c2d_messages.c
        stmt = sa.select(c.app_id, c.device_id).where(c.state == "pending").distinct()
        return {(r[0], r[1]) for r in self._rows(stmt)}

    def events(
        self,
        app_id: str,
        device_id: str,
        kinds: Sequence[str] | None = None,
        newest_first: bool = False,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[tuple[str, Json, datetime]]:
        """A device's events (kind, detail, time), oldest first unless ``newest_first``."""
        c = device_events.c
        where = (c.app_id == app_id) & (c.device_id == device_id)
        if kinds is not None:
            where &= c.kind.in_(list(kinds))
        order = c.seq.desc() if newest_first else c.seq
        stmt = sa.select(c.kind, c.detail, c.at).where(where).order_by(order)
        stmt = stmt.offset(offset).limit(limit)
        return [(r[0], r[1], _aware(r[2]) or utcnow()) for r in self._rows(stmt)]

    def device_states(self) -> dict[tuple[str, str], bool]:
        """(app, device) → enabled, for every device: to enforce blocks made elsewhere."""
        d = devices.c
        return {(r[0], r[1]): bool(r[2]) for r in self._rows(sa.select(d.app_id, d.id, d.enabled))}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    # WAL lets API readers run beside the writer; NORMAL syncs at checkpoints, which is
    # durable against a process crash (the metadata path is not the telemetry path).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
