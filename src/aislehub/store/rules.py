"""Rules, alerts, alert action outcomes and the rules engine's checkpoint.

A rule is stored as its document (docs/templates-format.md), checked by the rules model on
every write. Alerts are written by the engine inside :meth:`RuleStore.checkpoint`, the
one transaction that also moves its log offset and saves its evaluators' state: an alert
is opened exactly once however often the engine restarts.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from aislehub.store.rows import Json, Tables, aware, new_etag, utcnow
from aislehub.store.schema import alert_actions, alerts, rule_checkpoints, rules

ALERT_STATES = ("open", "acknowledged", "resolved")
_ACTIVE = ("open", "acknowledged")


@dataclass(slots=True)
class RuleRecord:
    app_id: str
    id: str
    enabled: bool
    document: Json
    etag: str = field(default_factory=new_etag)
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(slots=True)
class ActionOutcome:
    alert_id: str
    idx: int
    type: str
    spec: Json
    state: str = "pending"  # pending | succeeded | failed
    attempts: list[Json] = field(default_factory=list)
    updated_at: datetime = field(default_factory=utcnow)


@dataclass(slots=True)
class Alert:
    id: str
    app_id: str
    rule_id: str
    device_id: str
    severity: str
    state: str
    opened_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    detail: Json = field(default_factory=dict)
    actions: list[ActionOutcome] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AlertFilter:
    state: str | None = None
    severity: str | None = None
    rule_id: str | None = None
    device_id: str | None = None


@dataclass(frozen=True, slots=True)
class Opening:
    """An alert the engine opens, with the actions to run for it."""

    app_id: str
    rule_id: str
    device_id: str
    severity: str
    at: datetime
    detail: Json
    actions: Sequence[tuple[str, Json]]  # (type, spec)


@dataclass(frozen=True, slots=True)
class Resolution:
    app_id: str
    rule_id: str
    device_id: str
    at: datetime


def new_alert_id() -> str:
    return secrets.token_hex(16)


class RuleStore(Tables):
    # -- rules ----------------------------------------------------------------------
    def put(self, record: RuleRecord) -> RuleRecord:
        record.etag = new_etag()
        record.updated_at = utcnow()
        self._write(
            sa.delete(rules).where(_key(record.app_id, record.id)),
            sa.insert(rules).values({c.name: getattr(record, c.name) for c in rules.columns}),
        )
        return record

    def get(self, app_id: str, rule_id: str) -> RuleRecord | None:
        found = self._select(_key(app_id, rule_id), 0, 1)
        return found[0] if found else None

    def page(self, app_id: str, offset: int, limit: int) -> list[RuleRecord]:
        return self._select(rules.c.app_id == app_id, offset, limit)

    def all(self) -> list[RuleRecord]:
        return self._select(sa.true(), 0, None)

    def delete(self, app_id: str, rule_id: str) -> bool:
        with self.engine.begin() as conn:
            return conn.execute(sa.delete(rules).where(_key(app_id, rule_id))).rowcount > 0

    def fingerprint(self) -> tuple[object, ...]:
        """Changes whenever a rule is written or deleted, by any process."""
        stmt = sa.select(sa.func.count(), sa.func.max(rules.c.updated_at))
        return tuple(next(self._rows(stmt)))

    def _select(
        self, where: sa.ColumnElement[bool], offset: int, limit: int | None
    ) -> list[RuleRecord]:
        stmt = sa.select(rules).where(where).order_by(rules.c.app_id, rules.c.id).offset(offset)
        if limit is not None:
            stmt = stmt.limit(limit)
        found = []
        for row in self._rows(stmt):
            record = RuleRecord(**row._mapping)
            record.created_at = aware(record.created_at) or utcnow()
            record.updated_at = aware(record.updated_at) or utcnow()
            found.append(record)
        return found

    # -- alerts ---------------------------------------------------------------------
    def alert(self, app_id: str, alert_id: str) -> Alert | None:
        found = self._alerts((alerts.c.app_id == app_id) & (alerts.c.id == alert_id), 0, 1)
        return found[0] if found else None

    def alert_by_id(self, alert_id: str) -> Alert | None:
        found = self._alerts(alerts.c.id == alert_id, 0, 1)
        return found[0] if found else None

    def alerts(self, app_id: str, where: AlertFilter, offset: int, limit: int) -> list[Alert]:
        c = alerts.c
        clause = c.app_id == app_id
        for column, value in (
            (c.state, where.state),
            (c.severity, where.severity),
            (c.rule_id, where.rule_id),
            (c.device_id, where.device_id),
        ):
            if value is not None:
                clause = clause & (column == value)
        return self._alerts(clause, offset, limit)

    def active_alerts(self) -> list[tuple[str, str, str]]:
        """(app, rule, device) of every open or acknowledged alert."""
        c = alerts.c
        stmt = sa.select(c.app_id, c.rule_id, c.device_id).where(c.state.in_(_ACTIVE))
        return [(r[0], r[1], r[2]) for r in self._rows(stmt)]

    def acknowledge(self, app_id: str, alert_id: str, by: str) -> Alert | None:
        """Open → acknowledged; other states are left as they are."""
        c = alerts.c
        self._write(
            sa.update(alerts)
            .where((c.app_id == app_id) & (c.id == alert_id) & (c.state == "open"))
            .values(state="acknowledged", acknowledged_at=utcnow(), acknowledged_by=by)
        )
        return self.alert(app_id, alert_id)

    def resolve(self, app_id: str, alert_id: str, by: str) -> Alert | None:
        c = alerts.c
        self._write(
            sa.update(alerts)
            .where((c.app_id == app_id) & (c.id == alert_id) & c.state.in_(_ACTIVE))
            .values(state="resolved", resolved_at=utcnow(), resolved_by=by)
        )
        return self.alert(app_id, alert_id)

    def _alerts(self, where: sa.ColumnElement[bool], offset: int, limit: int) -> list[Alert]:
        stmt = (
            sa.select(alerts)
            .where(where)
            .order_by(alerts.c.opened_at.desc(), alerts.c.id)
            .offset(offset)
            .limit(limit)
        )
        found = [_alert(row._mapping) for row in self._rows(stmt)]
        if found:
            outcomes = self._outcomes(alert_actions.c.alert_id.in_([a.id for a in found]))
            by_alert: dict[str, list[ActionOutcome]] = {}
            for outcome in outcomes:
                by_alert.setdefault(outcome.alert_id, []).append(outcome)
            for a in found:
                a.actions = by_alert.get(a.id, [])
        return found

    # -- action outcomes ------------------------------------------------------------
    def pending_actions(self) -> list[ActionOutcome]:
        return self._outcomes(alert_actions.c.state == "pending")

    def record_attempt(self, outcome: ActionOutcome) -> None:
        c = alert_actions.c
        outcome.updated_at = utcnow()
        self._write(
            sa.update(alert_actions)
            .where((c.alert_id == outcome.alert_id) & (c.idx == outcome.idx))
            .values(
                state=outcome.state, attempts=list(outcome.attempts), updated_at=outcome.updated_at
            )
        )

    def _outcomes(self, where: sa.ColumnElement[bool]) -> list[ActionOutcome]:
        stmt = (
            sa.select(alert_actions)
            .where(where)
            .order_by(alert_actions.c.alert_id, alert_actions.c.idx)
        )
        found = []
        for row in self._rows(stmt):
            outcome = ActionOutcome(**row._mapping)
            outcome.updated_at = aware(outcome.updated_at) or utcnow()
            found.append(outcome)
        return found

    # -- the engine's checkpoint ----------------------------------------------------
    def load_checkpoint(self, consumer: str) -> tuple[int, bytes] | None:
        c = rule_checkpoints.c
        row = next(self._rows(sa.select(c.log_offset, c.state).where(c.consumer == consumer)), None)
        return (int(row[0]), bytes(row[1])) if row else None

    def checkpoint(
        self,
        consumer: str,
        offset: int,
        state: bytes,
        changes: Sequence[Opening | Resolution] = (),
    ) -> list[tuple[Alert, list[ActionOutcome]]]:
        """Save offset and state and apply alert changes in order, in one transaction.

        An opening is skipped when the rule already has an active alert for the device
        (one open alert per rule and device). Returns the alerts opened with their actions.
        """
        opened: list[tuple[Alert, list[ActionOutcome]]] = []
        with self.engine.begin() as conn:
            for change in changes:
                active = _active(change.app_id, change.rule_id, change.device_id)
                if isinstance(change, Resolution):
                    conn.execute(
                        sa.update(alerts)
                        .where(active)
                        .values(state="resolved", resolved_at=change.at, resolved_by="rule")
                    )
                elif conn.execute(sa.select(alerts.c.id).where(active).limit(1)).first() is None:
                    opened.append(_open(conn, change))
            c = rule_checkpoints.c
            conn.execute(sa.delete(rule_checkpoints).where(c.consumer == consumer))
            conn.execute(
                sa.insert(rule_checkpoints).values(
                    consumer=consumer, log_offset=offset, state=state, saved_at=utcnow()
                )
            )
        return opened


def _open(conn: sa.Connection, o: Opening) -> tuple[Alert, list[ActionOutcome]]:
    alert = Alert(
        new_alert_id(), o.app_id, o.rule_id, o.device_id, o.severity, "open", o.at, detail=o.detail
    )
    row = {c.name: getattr(alert, c.name) for c in alerts.columns}
    conn.execute(sa.insert(alerts).values(row))
    outcomes = [ActionOutcome(alert.id, i, kind, spec) for i, (kind, spec) in enumerate(o.actions)]
    if outcomes:
        conn.execute(
            sa.insert(alert_actions),
            [{c.name: getattr(x, c.name) for c in alert_actions.columns} for x in outcomes],
        )
    alert.actions = outcomes
    return alert, outcomes


def _alert(row: Any) -> Alert:
    a = Alert(**row)
    a.opened_at = aware(a.opened_at) or utcnow()
    a.acknowledged_at = aware(a.acknowledged_at)
    a.resolved_at = aware(a.resolved_at)
    return a


def _active(app_id: str, rule_id: str, device_id: str) -> sa.ColumnElement[bool]:
    c = alerts.c
    return (
        (c.app_id == app_id)
        & (c.rule_id == rule_id)
        & (c.device_id == device_id)
        & c.state.in_(_ACTIVE)
    )


def _key(app_id: str, rule_id: str) -> sa.ColumnElement[bool]:
    return (rules.c.app_id == app_id) & (rules.c.id == rule_id)
