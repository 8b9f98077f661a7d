"""Device and enrollment-group administration on an install's metadata store (CLI side)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from aislehub.hub.auth import derived_keys, device_keys
from aislehub.install import Install, new_group_key
from aislehub.store.metadata import Device, EnrollmentGroup, MetadataStore


def _open(data_dir: Path) -> tuple[Install, MetadataStore]:
    install = Install.load(data_dir)
    return install, MetadataStore(f"sqlite:///{data_dir / 'metadata.sqlite'}")


def _out(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def device_json(d: Device) -> dict[str, Any]:
    return {
        "id": d.id,
        "displayName": d.display_name,
        "template": d.template,
        "enabled": d.enabled,
        "provisioned": d.provisioned,
        "simulated": d.simulated,
        "modelId": d.model_id,
        "enrollmentGroup": d.enrollment_group_id,
    }


def device_command(data_dir: Path, args: argparse.Namespace) -> int:
    install, store = _open(data_dir)
    try:
        if args.action == "list":
            _out([device_json(d) for d in store.list_devices(install.app_id, 0, 1_000_000)])
            return 0
        if not args.device_id:
            return _fail(f"device {args.action} needs a device id")
        device = store.get_device(install.app_id, args.device_id)
        if args.action == "create":
            if device is not None:
                return _fail(f"device {args.device_id!r} already exists")
            device = Device(
                install.app_id,
                args.device_id,
                args.display_name or args.device_id,
                template=args.template,
            )
            _out(device_json(store.put_device(device)))
            return 0
        if device is None:
            return _fail(f"device {args.device_id!r} was not found")
        if args.action == "delete":
            store.delete_device(install.app_id, device.id)
        elif args.action in ("block", "unblock"):
            device.enabled = args.action == "unblock"
            _out(device_json(store.put_device(device)))
        elif args.action == "credentials":
            keys = device_keys(store, device)
            _out(
                {
                    "idScope": install.id_scope,
                    "symmetricKey": {
                        "primaryKey": keys[0] if keys else None,
                        "secondaryKey": keys[1] if len(keys) > 1 else None,
                    },
                }
            )
        else:
            _out(device_json(device))
        return 0
    finally:
        store.close()


def enrollment_command(data_dir: Path, args: argparse.Namespace) -> int:
    install, store = _open(data_dir)
    try:
        if args.action == "list":
            _out([_group_json(g) for g in store.list_groups(install.app_id)])
            return 0
        if not args.group_id:
            return _fail(f"enrollment {args.action} needs a group id")
        group = store.get_group(install.app_id, args.group_id)
        if args.action == "create":
            if group is not None:
                return _fail(f"enrollment group {args.group_id!r} already exists")
            group = store.put_group(
                EnrollmentGroup(
                    install.app_id,
                    args.group_id,
                    args.display_name or args.group_id,
                    args.type,
                    True,
                    {
                        "type": "symmetricKey",
                        "symmetricKey": {
                            "primaryKey": new_group_key(),
                            "secondaryKey": new_group_key(),
                        },
                    },
                )
            )
            _out(_group_json(group))
            return 0
        if group is None:
            return _fail(f"enrollment group {args.group_id!r} was not found")
        if args.action == "delete":
            store.delete_group(install.app_id, group.id)
        else:
            _out(_group_json(group))
        return 0
    finally:
        store.close()


def _group_json(g: EnrollmentGroup) -> dict[str, Any]:
    return {
        "id": g.id,
        "displayName": g.display_name,
        "type": g.type,
        "enabled": g.enabled,
        "attestation": g.attestation,
    }


__all__ = ["derived_keys", "device_command", "enrollment_command"]
