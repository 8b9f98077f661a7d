"""Device, enrollment-group and device-template administration on an install's metadata
store (CLI side)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from aislehub.errors import ApiError
from aislehub.hub.auth import device_keys
from aislehub.hub.lifecycle import device_changes
from aislehub.hub.templates import TemplateCatalog
from aislehub.install import Install, new_group_key
from aislehub.models import is_device_template, template_from_dtdl
from aislehub.settings import load_settings
from aislehub.store.metadata import Device, EnrollmentGroup, MetadataStore
from aislehub.store.templates import TemplateRecord


def _open(data_dir: Path) -> tuple[Install, MetadataStore]:
    """The install in ``data_dir`` and its metadata store (wherever its settings put it)."""
    install = Install.load(data_dir)
    return install, MetadataStore(load_settings(data_dir).metadata_url)


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
            if args.template and not store.templates.exists(install.app_id, args.template):
                return _fail(f"device template {args.template!r} was not found")
            device = Device(
                install.app_id,
                args.device_id,
                args.display_name or args.device_id,
                template=args.template,
            )
            _out(device_json(store.put_device(device)))
            _record(store, None, device)
            return 0
        if device is None:
            return _fail(f"device {args.device_id!r} was not found")
        if args.action == "delete":
            store.delete_device(install.app_id, device.id)
            _record(store, device, None)
        elif args.action in ("block", "unblock"):
            before = dataclasses.replace(device)
            device.enabled = args.action == "unblock"
            _out(device_json(store.put_device(device)))
            _record(store, before, device)
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


def _record(store: MetadataStore, before: Device | None, after: Device | None) -> None:
    """Store the lifecycle events of a CLI change (a running server sees them too)."""
    device = after if after is not None else before
    if device is None:
        return
    for kind, detail in device_changes(before, after, "cli"):
        store.add_event(device.app_id, device.id, kind, detail)


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


def template_command(data_dir: Path, args: argparse.Namespace) -> int:
    install, store = _open(data_dir)
    try:
        if args.action == "list":
            records = store.templates.page(install.app_id, 0, 1_000_000)
            _out([_template_json(store, t) for t in records])
            return 0
        if not args.target:
            what = "a file" if args.action == "import" else "a template id"
            return _fail(f"template {args.action} needs {what}")
        if args.action == "import":
            return _import_template(install, store, Path(args.target), args.id)
        catalog = TemplateCatalog(store)
        if args.action == "delete":
            catalog.delete(install.app_id, args.target)
            return 0
        record = store.templates.get(install.app_id, args.target)
        if record is None:
            return _fail(f"device template {args.target!r} was not found")
        _out(record.document | {"etag": record.etag})
        return 0
    except ApiError as exc:
        return _fail(exc.message)
    finally:
        store.close()


def _import_template(
    install: Install, store: MetadataStore, path: Path, template_id: str | None
) -> int:
    """An IoT Central template export, or plain DTDL (an Interface or an array of them)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return _fail(f"cannot read {path}: {exc}")
    if is_device_template(doc):
        body = dict(doc)
        template_id = template_id or body.get("@id")
    else:
        try:
            body = template_from_dtdl(doc, template_id)
        except ValueError as exc:
            return _fail(f"{path}: {exc}")
        template_id = body["@id"]
    if not isinstance(template_id, str):
        return _fail(f"{path} has no @id: give the template id with --id")
    record = TemplateCatalog(store).publish(install.app_id, template_id, body)
    _out(_template_json(store, record))
    return 0


def _template_json(store: MetadataStore, t: TemplateRecord) -> dict[str, Any]:
    return {
        "id": t.id,
        "displayName": t.display_name,
        "capabilityModelId": t.capability_model_id,
        "version": t.version,
        "etag": t.etag,
        "devices": store.templates.devices_using(t.app_id, t.id),
    }


__all__ = ["device_command", "enrollment_command", "template_command"]
