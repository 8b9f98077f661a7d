"""The machine's servers that the conformance suites run against: PostgreSQL and NATS.

Addresses come from ``AISLEHUB_TEST_POSTGRES`` (a SQLAlchemy URL of a database the tests
may ``CREATE DATABASE`` from; default the ``postgres`` database on 127.0.0.1:5432 as user
``postgres``, trust auth) and ``AISLEHUB_TEST_NATS`` (default ``nats://127.0.0.1:4222``).

A test that needs a server which is down is *skipped* on a developer's machine, with the
command that starts it, and *fails* in CI (``AISLEHUB_REQUIRE_SERVICES=1``, set by
``.ci/run``, which starts the servers first): CI must never go green on skipped backends.
Each test creates its own database or stream with a random name and removes it after.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

POSTGRES_ADMIN_URL = os.environ.get(
    "AISLEHUB_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
NATS_URL = os.environ.get("AISLEHUB_TEST_NATS", "nats://127.0.0.1:4222")
REQUIRED = os.environ.get("AISLEHUB_REQUIRE_SERVICES") == "1"

_HOW_TO_START = {
    "PostgreSQL": "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    "NATS": "nats-server -a 127.0.0.1 -p 4222 -js (see ../shared/services.md)",
}


def unique_name(prefix: str) -> str:
    """``<prefix>_<pid>_<random>``: lower case, safe as a database or stream name."""
    return f"{prefix}_{os.getpid()}_{secrets.token_hex(4)}"


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def _unavailable(service: str, url: str) -> None:
    reason = f"{service} is not reachable at {url}; start it with: {_HOW_TO_START[service]}"
    if REQUIRED:
        pytest.fail(f"{reason} (AISLEHUB_REQUIRE_SERVICES=1: backends may not be skipped)")
    pytest.skip(reason)


def require_nats() -> str:
    """The NATS URL, or skip/fail the test when the server is down."""
    if not _reachable(NATS_URL, 4222):
        _unavailable("NATS", NATS_URL)
    return NATS_URL


def require_postgres() -> sa.URL:
    """The admin URL, or skip/fail the test when the server is down."""
    url = sa.make_url(POSTGRES_ADMIN_URL)
    if not _reachable(f"//{url.host or '127.0.0.1'}:{url.port or 5432}", 5432):
        _unavailable("PostgreSQL", POSTGRES_ADMIN_URL)
    return url


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for the duration of the block; its URL.

    Created from ``template0`` with the C collation, so text sorts by code point as it
    does in SQLite (device ids page in the same order on both); dropped afterwards even
    if a connection was left open.
    """
    admin_url = require_postgres()
    name = unique_name("aislehub_test")
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(
                sa.text(
                    f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' "
                    "LC_COLLATE 'C' LC_CTYPE 'C'"
                )
            )
        try:
            yield admin_url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
