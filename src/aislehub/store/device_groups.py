"""Device groups (IoT Central ``/deviceGroups``): a name and a filter; membership is dynamic.

The filter is stored as text, exactly as given; ``device_filter_sql`` turns its parsed form
into a WHERE clause over the devices table when the members are listed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from aislehub.store.rows import Tables, aware, new_etag, utcnow
from aislehub.store.schema import device_groups


@dataclass(slots=True)
class DeviceGroup:
    app_id: str
    id: str
    display_name: str
    filter: str
    description: str | None = None
    organizations: list[str] = field(default_factory=list)
    etag: str = field(default_factory=new_etag)
    created_at: datetime = field(default_factory=utcnow)


class DeviceGroupStore(Tables):
    def put(self, group: DeviceGroup) -> DeviceGroup:
        group.etag = new_etag()
        self._write(
            sa.delete(device_groups).where(_key(group.app_id, group.id)),
            sa.insert(device_groups).values(
                {c.name: getattr(group, c.name) for c in device_groups.columns}
            ),
        )
        return group

    def get(self, app_id: str, group_id: str) -> DeviceGroup | None:
        found = self._select(_key(app_id, group_id), 0, 1)
        return found[0] if found else None

    def page(self, app_id: str, offset: int, limit: int) -> list[DeviceGroup]:
        return self._select(device_groups.c.app_id == app_id, offset, limit)

    def delete(self, app_id: str, group_id: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(sa.delete(device_groups).where(_key(app_id, group_id))).rowcount > 0

    def _select(self, where: sa.ColumnElement[bool], offset: int, limit: int) -> list[DeviceGroup]:
        stmt = (
            sa.select(device_groups)
            .where(where)
            .order_by(device_groups.c.id)
            .offset(offset)
            .limit(limit)
        )
        found = []
        for row in self._rows(stmt):
            group = DeviceGroup(**row._mapping)
            group.created_at = aware(group.created_at) or utcnow()
            found.append(group)
        return found


def _key(app_id: str, group_id: str) -> sa.ColumnElement[bool]:
    return (device_groups.c.app_id == app_id) & (device_groups.c.id == group_id)
