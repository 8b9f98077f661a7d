"""Bring a metadata database to the latest schema with Alembic.

Several processes may start at once on one PostgreSQL database (the scale-out build):
each migrates inside one transaction that first takes a transaction-level advisory lock,
so one of them creates the schema and the others find it done. On SQLite the same
transaction starts with ``BEGIN IMMEDIATE`` (the database's write lock). DDL is
transactional on both, so a migration that fails leaves nothing half-made.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")

# pg_advisory_xact_lock key: any constant that no other code of ours uses ("aislehub").
_MIGRATION_LOCK = 0x616973_6C6568


def upgrade(engine: sa.Engine) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
        elif connection.dialect.name == "sqlite":
            # pysqlite opens no transaction before DDL; take the write lock up front.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
