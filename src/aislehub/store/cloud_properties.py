"""Cloud properties: values an operator keeps about a device, never sent to the device.

IoT Central templates declare them as ``["Property", "Cloud"]``; they are read and written
through the device-properties routes beside the twin's values, with their own update times.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from aislehub.store.rows import Json, Tables
from aislehub.store.schema import cloud_properties


@dataclass(slots=True)
class CloudValues:
    values: Json = field(default_factory=dict)
    updated: dict[str, str] = field(default_factory=dict)  # name -> ISO time


class CloudPropertyStore(Tables):
    def get(self, app_id: str, device_id: str) -> CloudValues:
        c = cloud_properties.c
        stmt = sa.select(c.properties, c.updated).where(_key(app_id, device_id))
        row = next(self._rows(stmt), None)
        return CloudValues(dict(row[0]), dict(row[1])) if row else CloudValues()

    def save(self, app_id: str, device_id: str, cloud: CloudValues) -> None:
        self._write(
            sa.delete(cloud_properties).where(_key(app_id, device_id)),
            sa.insert(cloud_properties).values(
                app_id=app_id, device_id=device_id, properties=cloud.values, updated=cloud.updated
            ),
        )


def _key(app_id: str, device_id: str) -> sa.ColumnElement[bool]:
    c = cloud_properties.c
    return (c.app_id == app_id) & (c.device_id == device_id)
