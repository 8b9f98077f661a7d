"""``aislehub user …``: operator UI logins, on the install's metadata store directly.

``create NAME --password-stdin`` reads the password from standard input (never from the
command line, where other users of the machine could read it in the process list).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from aislehub.install import Install
from aislehub.settings import load_settings
from aislehub.store.metadata import MetadataStore
from aislehub.store.users import ROLES, User, UserStore, check_user_name

__all__ = ["user_command"]


def user_command(data_dir: Path, args: argparse.Namespace) -> int:
    install = Install.load(data_dir)
    store = MetadataStore(load_settings(data_dir).metadata_url)
    try:
        users = UserStore(store.engine)
        if args.action == "list":
            rows = [{"name": u.name, "role": u.role} for u in users.in_app(install.app_id)]
            print(json.dumps(rows, indent=2))
            return 0
        if not args.name:
            return _fail("name the user")
        if args.action == "delete":
            return 0 if users.delete(install.app_id, args.name) else _fail("no such user")
        return _create(users, install.app_id, args)
    finally:
        store.close()


def _create(users: UserStore, app_id: str, args: argparse.Namespace) -> int:
    problem = check_user_name(args.name)
    if problem is None and args.role not in ROLES:
        problem = f"role is one of {', '.join(ROLES)}"
    if problem is not None:
        return _fail(problem)
    if not args.password_stdin:
        return _fail("pass the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")
    try:
        users.create(User(app_id, args.name, args.role), password)
    except ValueError as exc:
        return _fail(str(exc))
    print(json.dumps({"name": args.name, "role": args.role, "appId": app_id}))
    return 0


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1
