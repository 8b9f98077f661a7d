"""The Alembic migrations build exactly ``store/schema.py``, and 0002 keeps 0001's data."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from aislehub.store.metadata import MetadataStore
from aislehub.store.migrate import MIGRATIONS
from aislehub.store.schema import metadata


def _upgrade(engine: sa.Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_migrated_database_matches_the_schema(tmp_path: Path) -> None:
    store = MetadataStore(f"sqlite:///{tmp_path / 'm.sqlite'}")
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    store.close()
    assert diff == []


def test_0002_keeps_existing_twins(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'm.sqlite'}")
    _upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO twins VALUES ('a', 'd', '', '{\"x\": 1}', 2, '{}', '{}', 1, '{}')")
        )
    engine.dispose()
    store = MetadataStore(f"sqlite:///{tmp_path / 'm.sqlite'}")
    twin = store.get_twin("a", "d")
    store.close()
    assert twin.desired == {"x": 1} and twin.desired_version == 2
    assert twin.desired_versions == {}
