"""``aislehub rule …`` and ``aislehub alert …``: rules and alerts on an install's metadata store.

They work with or without a server running: a running server's engine notices rule writes
within a second (hot reload), as it does for the API's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from aislehub.errors import ApiError
from aislehub.hub.templates import TemplateCatalog
from aislehub.install import Install
from aislehub.rules.model import RuleInvalid, check_against_template, parse_rule
from aislehub.settings import load_settings
from aislehub.store.metadata import MetadataStore
from aislehub.store.rows import Json, iso_stamp
from aislehub.store.rules import Alert, AlertFilter, RuleRecord, RuleStore

__all__ = ["alert_command", "rule_command", "save_rule"]


def _open(data_dir: Path) -> tuple[str, MetadataStore]:
    install = Install.load(data_dir)
    return install.app_id, MetadataStore(load_settings(data_dir).metadata_url)


def _out(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def save_rule(store: MetadataStore, app_id: str, document: Json) -> RuleRecord:
    """Check ``document`` (parse, template, device group) and store it; RuleInvalid if not."""
    rule = parse_rule(document)
    templates = TemplateCatalog(store)
    check_against_template(rule, templates.get(app_id, rule.target.template))
    group = rule.target.device_group
    if group is not None and store.groups.get(app_id, group) is None:
        raise RuleInvalid([("$.target.deviceGroup", f"device group {group!r} was not found")])
    rules = RuleStore(store.engine)
    current = rules.get(app_id, rule.id)
    record = RuleRecord(app_id, rule.id, rule.enabled, dict(document))
    if current is not None:
        record.created_at = current.created_at
    return rules.put(record)


def rule_json(record: RuleRecord) -> Json:
    return {**record.document, "id": record.id, "enabled": record.enabled, "etag": record.etag}


def rule_command(data_dir: Path, args: argparse.Namespace) -> int:
    app_id, store = _open(data_dir)
    rules = RuleStore(store.engine)
    try:
        if args.action == "list":
            _out([rule_json(r) for r in rules.page(app_id, 0, 100_000)])
            return 0
        if args.action == "import":
            return _import(store, app_id, Path(args.target))
        if not args.target:
            return _fail(f"rule {args.action} needs a rule id")
        record = rules.get(app_id, args.target)
        if record is None:
            return _fail(f"rule {args.target!r} not found")
        if args.action == "show":
            _out(rule_json(record))
        elif args.action == "delete":
            rules.delete(app_id, args.target)
        else:  # enable | disable
            enabled = args.action == "enable"
            document = {**record.document, "enabled": enabled}
            _out(rule_json(save_rule(store, app_id, document)))
        return 0
    except ApiError as exc:
        return _fail(exc.message)
    finally:
        store.close()


def _import(store: MetadataStore, app_id: str, path: Path) -> int:
    """A rules.json array or one rule object; every rule is checked before any is stored."""
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        return _fail(f"cannot read {path}: {exc}")
    documents = loaded if isinstance(loaded, list) else [loaded]
    templates = TemplateCatalog(store)
    for i, doc in enumerate(documents):
        try:
            rule = parse_rule(doc)
            check_against_template(rule, templates.get(app_id, rule.target.template))
        except RuleInvalid as exc:
            return _fail(f"rule {i} in {path}: {exc.message}")
    _out([save_rule(store, app_id, doc).id for doc in documents])
    return 0


def alert_json(alert: Alert) -> Json:
    return {
        "id": alert.id,
        "rule": alert.rule_id,
        "device": alert.device_id,
        "severity": alert.severity,
        "state": alert.state,
        "opened": iso_stamp(alert.opened_at),
        "acknowledgedBy": alert.acknowledged_by,
        "resolvedBy": alert.resolved_by,
        "actions": [{"type": a.type, "state": a.state} for a in alert.actions],
    }


def alert_command(data_dir: Path, args: argparse.Namespace) -> int:
    app_id, store = _open(data_dir)
    rules = RuleStore(store.engine)
    try:
        if args.action == "list":
            where = AlertFilter(args.state, args.severity, args.rule, args.device)
            _out([alert_json(a) for a in rules.alerts(app_id, where, 0, args.limit)])
            return 0
        if not args.alert_id:
            return _fail(f"alert {args.action} needs an alert id")
        alert = rules.alert(app_id, args.alert_id)
        if alert is None:
            return _fail(f"alert {args.alert_id!r} not found")
        if alert.state == "resolved":
            return _fail(f"alert {args.alert_id!r} is resolved already")
        change = rules.acknowledge if args.action == "ack" else rules.resolve
        done = change(app_id, args.alert_id, args.by)
        assert done is not None
        _out(alert_json(done))
        return 0
    finally:
        store.close()
