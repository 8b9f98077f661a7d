"""Operator UI accounts and dashboards, over the metadata store's engine.

Passwords are kept as argon2id hashes (argon2-cffi's defaults, RFC 9106's second
recommended parameter set); a hash made with older parameters is replaced at the next
successful login. A login name is unique in the install, so the login form needs no app.
Dashboards are stored as given (IoT Central's §3.6 shape; tiles are opaque here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from aislehub.store.rows import Tables, new_etag, utcnow
from aislehub.store.schema import dashboards, users

__all__ = ["Dashboard", "DashboardStore", "User", "UserStore", "check_user_name"]

Json = dict[str, Any]
ROLES = ("admin", "operator", "viewer")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD = 8
_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps the timing of "no such user"
# and "wrong password" alike.
_DUMMY = _hasher.hash("not a password of anyone")


@dataclass(slots=True)
class User:
    app_id: str
    name: str
    role: str = "admin"
    created_at: datetime = field(default_factory=utcnow)


@dataclass(slots=True)
class Dashboard:
    app_id: str
    id: str
    document: Json
    etag: str = field(default_factory=new_etag)
    updated_at: datetime = field(default_factory=utcnow)


def check_user_name(name: str) -> str | None:
    """A reason the name cannot be a login, or None."""
    if not _NAME.fullmatch(name):
        return "a user name is 1 to 64 of A-Z a-z 0-9 . _ @ - (starting with a letter or digit)"
    return None


class UserStore(Tables):
    def create(self, user: User, password: str) -> User:
        """Add ``user``; ValueError when the name is taken or the password too short."""
        if len(password) < MIN_PASSWORD:
            raise ValueError(f"a password has at least {MIN_PASSWORD} characters")
        if self.get(user.name) is not None:
            raise ValueError(f"user {user.name!r} exists")
        row: Json = {"password_hash": _hasher.hash(password), "app_id": user.app_id}
        row |= {"name": user.name, "role": user.role, "created_at": user.created_at}
        self._write(sa.insert(users).values(row))
        return user

    def set_password(self, name: str, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise ValueError(f"a password has at least {MIN_PASSWORD} characters")
        stmt = sa.update(users).where(users.c.name == name)
        self._write(stmt.values(password_hash=_hasher.hash(password)))

    def get(self, name: str) -> User | None:
        for r in self._rows(sa.select(users).where(users.c.name == name)):
            return User(r.app_id, r.name, r.role, r.created_at)
        return None

    def in_app(self, app_id: str) -> list[User]:
        stmt = sa.select(users).where(users.c.app_id == app_id).order_by(users.c.name)
        return [User(r.app_id, r.name, r.role, r.created_at) for r in self._rows(stmt)]

    def delete(self, app_id: str, name: str) -> bool:
        with self.engine.begin() as conn:
            key = (users.c.app_id == app_id) & (users.c.name == name)
            return conn.execute(sa.delete(users).where(key)).rowcount > 0

    def authenticate(self, name: str, password: str) -> User | None:
        """The user when ``password`` is theirs, else None (same cost either way)."""
        rows = list(self._rows(sa.select(users).where(users.c.name == name)))
        stored = rows[0].password_hash if rows else _DUMMY
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if not rows:
            return None
        if _hasher.check_needs_rehash(stored):
            self.set_password(name, password)
        r = rows[0]
        return User(r.app_id, r.name, r.role, r.created_at)


class DashboardStore(Tables):
    def put(self, dashboard: Dashboard) -> Dashboard:
        dashboard.etag, dashboard.updated_at = new_etag(), utcnow()
        key = _key(dashboard.app_id, dashboard.id)
        row: Json = {"app_id": dashboard.app_id, "id": dashboard.id}
        row |= {"document": dashboard.document}
        row |= {"etag": dashboard.etag, "updated_at": dashboard.updated_at}
        self._write(sa.delete(dashboards).where(key), sa.insert(dashboards).values(row))
        return dashboard

    def get(self, app_id: str, dashboard_id: str) -> Dashboard | None:
        found = self._select(_key(app_id, dashboard_id))
        return found[0] if found else None

    def in_app(self, app_id: str) -> list[Dashboard]:
        return self._select(dashboards.c.app_id == app_id)

    def delete(self, app_id: str, dashboard_id: str) -> bool:
        with self.engine.begin() as conn:
            return (
                conn.execute(sa.delete(dashboards).where(_key(app_id, dashboard_id))).rowcount > 0
            )

    def _select(self, where: sa.ColumnElement[bool]) -> list[Dashboard]:
        stmt = sa.select(dashboards).where(where).order_by(dashboards.c.id)
        return [
            Dashboard(r.app_id, r.id, r.document, r.etag, r.updated_at) for r in self._rows(stmt)
        ]


def _key(app_id: str, dashboard_id: str) -> sa.ColumnElement[bool]:
    return (dashboards.c.app_id == app_id) & (dashboards.c.id == dashboard_id)
