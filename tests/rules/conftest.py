"""Fixtures shared by the rules tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aislehub.store.metadata import App, MetadataStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetadataStore]:
    """A SQLite metadata store with one app, ``app1``."""
    s = MetadataStore(f"sqlite:///{tmp_path / 'm.sqlite'}")
    s.create_app(App("app1", "App", "app1", "0ne00000001"))
    yield s
    s.close()
