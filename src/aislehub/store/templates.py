"""Device templates, versioned: every write stores a new version and keeps the older ones.

The current document lives in ``device_templates``; ``device_template_versions`` holds every
version ever written (the current one included), so an operator can see what changed and
restore it with a PUT. Template-to-device bookkeeping (which devices use a template, auto-
assignment of the devices that announced its model) is here too: it is about templates.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from aislehub.store.rows import Json, Tables, aware, new_etag, utcnow
from aislehub.store.schema import device_template_versions, device_templates, devices


@dataclass(slots=True)
class TemplateRecord:
    app_id: str
    id: str
    document: Json
    capability_model_id: str
    display_name: str | None = None
    version: int = 0  # set by ``put``
    etag: str = field(default_factory=new_etag)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class TemplateVersion:
    version: int
    etag: str
    created_at: datetime
    document: Json


class TemplateStore(Tables):
    def get(self, app_id: str, template_id: str) -> TemplateRecord | None:
        found = self._select(_key(app_id, template_id), 0, 1)
        return found[0] if found else None

    def page(self, app_id: str, offset: int, limit: int) -> list[TemplateRecord]:
        return self._select(device_templates.c.app_id == app_id, offset, limit)

    def every(self) -> list[TemplateRecord]:
        """The current version of every template of every app."""
        return self._select(sa.true(), 0, None)

    def exists(self, app_id: str, template_id: str) -> bool:
        stmt = sa.select(device_templates.c.id).where(_key(app_id, template_id))
        return next(self._rows(stmt), None) is not None

    def put(self, record: TemplateRecord) -> TemplateRecord:
        """Store ``record`` as the next version (1 for a new template); new etag.

        One transaction reads the current version and writes the next, so two writers
        (the server and the CLI) cannot both claim a version number."""
        c = device_templates.c
        key = _key(record.app_id, record.id)
        with self.engine.begin() as conn:
            current = conn.execute(sa.select(c.version, c.created_at).where(key)).first()
            record.version = current[0] + 1 if current else 1
            record.updated_at = utcnow()
            record.created_at = (aware(current[1]) if current else None) or record.updated_at
            record.etag = new_etag()
            conn.execute(sa.delete(device_templates).where(key))
            conn.execute(sa.insert(device_templates).values(**_columns(record)))
            conn.execute(
                sa.insert(device_template_versions).values(
                    app_id=record.app_id,
                    template_id=record.id,
                    version=record.version,
                    document=record.document,
                    etag=record.etag,
                    created_at=record.updated_at,
                )
            )
        return record

    def delete(self, app_id: str, template_id: str) -> bool:
        v = device_template_versions.c
        with self.engine.begin() as conn:
            gone = conn.execute(sa.delete(device_templates).where(_key(app_id, template_id)))
            conn.execute(
                sa.delete(device_template_versions).where(
                    (v.app_id == app_id) & (v.template_id == template_id)
                )
            )
            return gone.rowcount > 0

    def versions(
        self, app_id: str, template_id: str, offset: int, limit: int
    ) -> list[TemplateVersion]:
        """Every stored version, newest first."""
        v = device_template_versions.c
        stmt = (
            sa.select(v.version, v.etag, v.created_at, v.document)
            .where((v.app_id == app_id) & (v.template_id == template_id))
            .order_by(v.version.desc())
            .offset(offset)
            .limit(limit)
        )
        rows = self._rows(stmt)
        return [TemplateVersion(r[0], r[1], aware(r[2]) or utcnow(), r[3]) for r in rows]

    # -- templates and devices ---------------------------------------------------------
    def match(self, app_id: str, model_id: str) -> str | None:
        """The template for a device announcing ``model_id``: the one with that id, else
        one whose capability model has that @id."""
        c = device_templates.c
        stmt = (
            sa.select(c.id)
            .where(c.app_id == app_id)
            .where((c.id == model_id) | (c.capability_model_id == model_id))
            .order_by((c.id == model_id).desc(), c.id)
            .limit(1)
        )
        row = next(self._rows(stmt), None)
        return str(row[0]) if row else None

    def devices_using(self, app_id: str, template_id: str) -> int:
        d = devices.c
        stmt = sa.select(sa.func.count()).where((d.app_id == app_id) & (d.template == template_id))
        return int(next(self._rows(stmt))[0])

    def note_model(
        self, app_id: str, device_id: str, model_id: str, template_id: str | None
    ) -> bool:
        """Record the model a device announced; assign ``template_id`` if it has none.

        Returns whether the template was assigned. Guarded by ``template IS NULL`` so a
        stale cached device can never overwrite an operator's choice.
        """
        d = devices.c
        key = (d.app_id == app_id) & (d.id == device_id)
        with self.engine.begin() as conn:
            conn.execute(sa.update(devices).where(key).values(model_id=model_id))
            if template_id is None:
                return False
            assign = (
                sa.update(devices)
                .where(key & d.template.is_(None))
                .values(template=template_id, etag=new_etag(), last_updated_at=utcnow())
            )
            return conn.execute(assign).rowcount > 0

    def assign_unassociated(
        self, app_id: str, model_ids: Iterable[str], template_id: str
    ) -> list[str]:
        """Give ``template_id`` to every unassociated device that announced one of
        ``model_ids``; the ids of the devices assigned."""
        d = devices.c
        where = (d.app_id == app_id) & d.template.is_(None) & d.model_id.in_(list(model_ids))
        with self.engine.begin() as conn:
            ids = [str(r[0]) for r in conn.execute(sa.select(d.id).where(where))]
            if ids:
                conn.execute(
                    sa.update(devices)
                    .where((d.app_id == app_id) & d.id.in_(ids) & d.template.is_(None))
                    .values(template=template_id, etag=new_etag(), last_updated_at=utcnow())
                )
            return ids

    def _select(
        self, where: sa.ColumnElement[bool], offset: int, limit: int | None
    ) -> list[TemplateRecord]:
        c = device_templates.c
        stmt = sa.select(device_templates).where(where).order_by(c.id).offset(offset).limit(limit)
        found = []
        for row in self._rows(stmt):
            record = TemplateRecord(**row._mapping)
            record.created_at = aware(record.created_at) or utcnow()
            record.updated_at = aware(record.updated_at) or utcnow()
            found.append(record)
        return found


def _key(app_id: str, template_id: str) -> sa.ColumnElement[bool]:
    return (device_templates.c.app_id == app_id) & (device_templates.c.id == template_id)


def _columns(record: TemplateRecord) -> Json:
    return {c.name: getattr(record, c.name) for c in device_templates.columns}
