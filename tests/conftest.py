from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import Server, init_server


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    """A real ``aislehub serve`` process on its own loopback address."""
    srv = init_server(tmp_path)
    srv.start()
    try:
        yield srv
    finally:
        if srv.proc is not None:
            srv.stop()
