"""The in-process API app (tests/api/conftest.py), which serves the operator UI too."""

from tests.api.conftest import anyio_backend, app_for, env, migrated_db

__all__ = ["anyio_backend", "app_for", "env", "migrated_db"]
