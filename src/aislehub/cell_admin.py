"""``aislehub app`` and ``aislehub cell``: tenants and the cells that hold them (CLI side).

A running server reads the cell map every second: a new cell is opened, and an app moved
to another cell has its devices disconnected so they reconnect into it. What the app
stored before the move stays in its old cell's database; docs/operations-scale-out.md
("Tenant cells") gives the procedure that copies it over.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from aislehub.install import create_app
from aislehub.settings import load_settings
from aislehub.store.cells import DEFAULT_CELL, Cell, CellStore
from aislehub.store.metadata import MetadataStore

__all__ = ["app_command", "cell_command"]


def _out(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def app_command(data_dir: Path, args: argparse.Namespace) -> int:
    store = MetadataStore(load_settings(data_dir).metadata_url)
    cells = CellStore(store.engine)
    try:
        if args.action == "list":
            mapping = cells.mapping()
            _out(
                [
                    {
                        "id": a.id,
                        "name": a.name,
                        "subdomain": a.subdomain,
                        "idScope": a.id_scope,
                        "cell": mapping.get(a.id, DEFAULT_CELL),
                    }
                    for a in store.list_apps()
                ]
            )
            return 0
        if args.action == "create":
            if not args.name or not args.subdomain:
                return _fail("app create needs a NAME and --subdomain")
            if args.cell and args.cell != DEFAULT_CELL and cells.get(args.cell) is None:
                return _fail(f"there is no cell {args.cell!r} (aislehub cell list)")
            if any(a.subdomain == args.subdomain for a in store.list_apps()):
                return _fail(f"subdomain {args.subdomain!r} is taken")
            app, token = create_app(store, args.name, args.subdomain)
            cell = args.cell or DEFAULT_CELL
            cells.assign(app.id, cell)
            _out({"appId": app.id, "idScope": app.id_scope, "apiToken": token, "cell": cell})
            return 0
        # move
        if not args.name or not args.cell:
            return _fail("app move needs an APP id and --cell")
        try:
            cells.assign(args.name, args.cell)
        except ValueError as exc:
            return _fail(str(exc))
        _out({"appId": args.name, "cell": args.cell})
        return 0
    finally:
        store.close()


def cell_command(data_dir: Path, args: argparse.Namespace) -> int:
    store = MetadataStore(load_settings(data_dir).metadata_url)
    cells = CellStore(store.engine)
    try:
        if args.action == "list":
            mapping = cells.mapping()
            rows: list[dict[str, Any]] = [
                {"id": DEFAULT_CELL, "stream": None, "telemetryDatabase": None}
            ]
            rows += [
                {"id": c.id, "stream": c.stream, "telemetryDatabase": _redact(c.telemetry_database)}
                for c in cells.list()
            ]
            for row in rows:
                row["apps"] = sorted(a for a, c in mapping.items() if c == row["id"])
            _out(rows)
            return 0
        if not args.cell_id or not args.stream:
            return _fail("cell add needs a CELL id and --stream")
        try:
            cell = cells.add(Cell(args.cell_id, args.stream, args.telemetry_database))
        except ValueError as exc:
            return _fail(str(exc))
        _out({"id": cell.id, "stream": cell.stream})
        return 0
    finally:
        store.close()


def _redact(url: str | None) -> str | None:
    """A database URL without its password."""
    if url is None or "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"
