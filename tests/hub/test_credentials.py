from __future__ import annotations

import base64
from pathlib import Path

from aislehub.hub.auth import DEFAULT_GROUP, CredentialCache, derived_keys
from aislehub.store.metadata import App, Device, EnrollmentGroup, MetadataStore

KEY = base64.b64encode(b"k" * 32).decode()


def make_store(tmp_path: Path) -> MetadataStore:
    store = MetadataStore(f"sqlite:///{tmp_path / 'm.sqlite'}")
    store.create_app(App("app", "App", "app", "0ne00000001"))
    attestation = {"type": "symmetricKey", "symmetricKey": {"primaryKey": KEY}}
    store.put_group(EnrollmentGroup("app", DEFAULT_GROUP, "g", "iot", True, attestation))
    return store


def test_cache_serves_group_derived_keys_and_sees_blocking_at_once(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.put_device(Device("app", "d1", "d1"))
    cache = CredentialCache(store)
    device, keys = cache.lookup("app", "d1")
    group = store.get_group("app", DEFAULT_GROUP)
    assert device is not None and group is not None
    assert keys == derived_keys(group, "d1")

    device.enabled = False
    store.put_device(device)  # bumps the generation: the cache must not serve the old entry
    blocked, _ = cache.lookup("app", "d1")
    assert blocked is not None and blocked.enabled is False


def test_unknown_device_has_no_keys(tmp_path: Path) -> None:
    cache = CredentialCache(make_store(tmp_path))
    assert cache.lookup("app", "nope") == (None, [])
