"""The ``aislehub`` command.

``init`` prints one JSON object (relied on by scripts and outside checks); the device and
enrollment commands work on the install's metadata store directly, so they run with or
without a server; ``serve`` runs everything in one process until SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aislehub.settings import load_settings

Handler = Callable[[argparse.Namespace], int]


def _print(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


def cmd_init(args: argparse.Namespace) -> int:
    from aislehub.install import initialize

    try:
        install, token = initialize(Path(args.data_dir), args.hostname or [], args.ip or [])
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        json.dumps(
            {
                "appId": install.app_id,
                "idScope": install.id_scope,
                "hostname": install.hostname,
                "apiToken": token,
                "caCertPath": install.ca_cert_path,
                "dataDir": str(Path(args.data_dir).resolve()),
            }
        )
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from aislehub.runtime import run
    from aislehub.workers import refusal, supervise

    roles = ",".join(args.role) if args.role else None
    settings = load_settings(Path(args.data_dir)).with_overrides(
        bind=args.bind,
        mqtt_port=args.mqtt_port,
        ws_port=args.ws_port,
        http_port=args.http_port,
        plain_mqtt_port=args.plain_mqtt_port,
        metadata_database=args.metadata_database,
        telemetry_database=args.telemetry_database,
        nats_url=args.nats,
        workers=args.workers,
        roles=roles,
        reuse_port=args.reuse_port or None,
    )
    try:
        settings.role_set  # noqa: B018 - validates the role names
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if (why := refusal(settings)) is not None:
        print(f"error: {why}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if settings.workers > 1:
        return supervise(settings)
    run(settings)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from aislehub.simulator.demo import run_demo

    return run_demo(Path(args.data_dir), args.devices, args.http_port, args.bind)


def cmd_simulate(args: argparse.Namespace) -> int:
    from aislehub.simulator.simulate import SimulateOptions, run_simulate

    opts = SimulateOptions(
        args.template,
        args.count,
        args.rate,
        args.speed,
        args.seed,
        args.duration,
        not args.no_faults,
        args.host,
    )
    return run_simulate(Path(args.data_dir), opts)


def cmd_device(args: argparse.Namespace) -> int:
    from aislehub import admin

    return admin.device_command(Path(args.data_dir), args)


def cmd_enrollment(args: argparse.Namespace) -> int:
    from aislehub import admin

    return admin.enrollment_command(Path(args.data_dir), args)


def cmd_template(args: argparse.Namespace) -> int:
    from aislehub import admin

    return admin.template_command(Path(args.data_dir), args)


def cmd_rule(args: argparse.Namespace) -> int:
    from aislehub.rules import admin as rules_admin

    return rules_admin.rule_command(Path(args.data_dir), args)


def cmd_alert(args: argparse.Namespace) -> int:
    from aislehub.rules import admin as rules_admin

    return rules_admin.alert_command(Path(args.data_dir), args)


def cmd_job(args: argparse.Namespace) -> int:
    from aislehub import job_admin

    return job_admin.job_command(Path(args.data_dir), args)


def cmd_user(args: argparse.Namespace) -> int:
    from aislehub.web.accounts import user_command

    return user_command(Path(args.data_dir), args)


def cmd_app(args: argparse.Namespace) -> int:
    from aislehub.cell_admin import app_command

    return app_command(Path(args.data_dir), args)


def cmd_cell(args: argparse.Namespace) -> int:
    from aislehub.cell_admin import cell_command

    return cell_command(Path(args.data_dir), args)


def cmd_bench(args: argparse.Namespace) -> int:
    from aislehub.bench import main as bench_main

    return bench_main(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aislehub", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Handler, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--data-dir", default="./data", help="install directory (default ./data)")
        p.set_defaults(handler=handler)
        return p

    p = command("init", cmd_init, "create an install: CA, server certificate, app, API token")
    p.add_argument("--hostname", action="append", help="host name devices dial (repeatable)")
    p.add_argument("--ip", action="append", help="IP address devices dial (repeatable)")

    p = command("serve", cmd_serve, "run gateway, ingest and API in one process")
    p.add_argument("--bind", default=None)
    p.add_argument("--mqtt-port", type=int, default=None)
    p.add_argument("--ws-port", type=int, default=None)
    p.add_argument("--http-port", type=int, default=None)
    p.add_argument("--plain-mqtt-port", type=int, default=None)
    p.add_argument("--metadata-database", help="SQLAlchemy URL (default: SQLite in the data dir)")
    p.add_argument("--telemetry-database", help="postgresql://… (default: DuckDB in the data dir)")
    p.add_argument("--nats", help="nats://… : the ingest log on JetStream (default: local log)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes sharing the ports (SO_REUSEPORT); above 1 needs PostgreSQL and NATS",
    )
    p.add_argument(
        "--role",
        action="append",
        help="what this process runs: gateway, ingest, api, rules (repeatable or a comma list; "
        "default all)",
    )
    p.add_argument(
        "--reuse-port",
        action="store_true",
        help="bind with SO_REUSEPORT, to share the ports with other serve processes",
    )

    p = command("demo", cmd_demo, "init (if needed), serve and run a simulated fleet")
    p.add_argument("--devices", type=int, default=None, help="default: ~200 over six templates")
    p.add_argument("--http-port", type=int, default=8080)
    p.add_argument("--bind", default="127.0.0.1")

    p = command("simulate", cmd_simulate, "run a template's simulated fleet against a server")
    p.add_argument("--template", required=True, help="e.g. connected-cooler")
    p.add_argument("--count", type=int, default=None, help="devices (default: the profile's)")
    p.add_argument("--rate", type=float, default=None, help="messages per second per device")
    p.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--no-faults", action="store_true", help="skip the profile's faults")
    p.add_argument("--host", default=None, help="address to dial (default: the bound one)")

    p = command("device", cmd_device, "manage devices")
    p.add_argument(
        "action", choices=["list", "show", "create", "delete", "block", "unblock", "credentials"]
    )
    p.add_argument("device_id", nargs="?")
    p.add_argument("--display-name")
    p.add_argument("--template")

    p = command("enrollment", cmd_enrollment, "manage enrollment groups")
    p.add_argument("action", choices=["list", "show", "create", "delete"])
    p.add_argument("group_id", nargs="?")
    p.add_argument("--display-name")
    p.add_argument("--type", choices=["iot", "iotEdge"], default="iot")

    p = command("template", cmd_template, "manage device templates")
    p.add_argument("action", choices=["list", "show", "import", "delete"])
    p.add_argument(
        "target", nargs="?", help="import: a DTDL or IoT Central template file; else an id"
    )
    p.add_argument("--id", help="import: the template id (default: the file's @id)")

    p = command("rule", cmd_rule, "manage rules (applied by a running server within a second)")
    p.add_argument("action", choices=["list", "show", "import", "delete", "enable", "disable"])
    p.add_argument("target", nargs="?", help="import: a rules.json file or one rule; else an id")

    p = command("alert", cmd_alert, "list, acknowledge and resolve alerts")
    p.add_argument("action", choices=["list", "ack", "resolve"])
    p.add_argument("alert_id", nargs="?")
    p.add_argument("--state", choices=["open", "acknowledged", "resolved"])
    p.add_argument("--severity", choices=["info", "warning", "critical"])
    p.add_argument("--rule")
    p.add_argument("--device")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--by", default="cli", help="ack / resolve: who (default: cli)")

    p = command("job", cmd_job, "manage jobs (run by the server)")
    p.add_argument(
        "action", choices=["list", "show", "create", "stop", "resume", "rerun", "results"]
    )
    p.add_argument("target", nargs="?", help="create: a Job JSON file; else a job id")
    p.add_argument("--id", help="create / rerun: the new job's id (default: the file's, or a uuid)")
    p.add_argument("--csv", action="store_true", help="results: CSV instead of JSON")

    p = command("user", cmd_user, "manage operator UI users")
    p.add_argument("action", choices=["list", "create", "delete"])
    p.add_argument("name", nargs="?")
    p.add_argument("--role", default="admin", help="admin, operator or viewer")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")

    p = command("app", cmd_app, "manage apps (tenants) and the cell each lives in")
    p.add_argument("action", choices=["list", "create", "move"])
    p.add_argument("name", nargs="?", help="create: the app's name; move: the app id")
    p.add_argument("--subdomain", help="create: the first host label its devices dial")
    p.add_argument("--cell", help="create / move: the cell (default: the default cell)")

    p = command("cell", cmd_cell, "manage tenant cells (stream + telemetry database)")
    p.add_argument("action", choices=["list", "add"])
    p.add_argument("cell_id", nargs="?")
    p.add_argument("--stream", help="add: the cell's JetStream stream (or local log name)")
    p.add_argument(
        "--telemetry-database", help="add: postgresql://… (default: a DuckDB file in the data dir)"
    )

    p = command("bench", cmd_bench, "run a benchmark and print its figures")
    p.add_argument(
        "scenario", choices=["ingest", "query", "anomaly", "simulate", "explorer", "rules"]
    )
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--window", type=int, default=20, help="QoS 1 messages in flight per device")
    p.add_argument("--no-tls", action="store_true", help="skip the TLS run")
    p.add_argument("--no-typed", action="store_true", help="skip the typed-ingest run")
    p.add_argument("--no-reference", action="store_true", help="skip the Mosquitto run")
    p.add_argument("--rows", type=int, default=10_000_000, help="query: telemetry rows")
    p.add_argument("--repeat", type=int, default=9, help="query: runs per statement")
    p.add_argument(
        "--rounds", type=int, default=4, help="rules: rounds of without/with phases (ABBA)"
    )
    p.add_argument("--days", type=float, default=30.0, help="anomaly: simulated days")
    p.add_argument("--hours", type=float, default=24.0, help="explorer: hours of 1 Hz data")
    p.add_argument(
        "--chart-points", type=int, default=10_000_000, help="explorer: raw points charted"
    )
    p.add_argument("--no-browser", action="store_true", help="explorer: skip the Chromium run")
    p.add_argument(
        "--backend",
        choices=["embedded", "scale", "postgres"],
        default="embedded",
        help="ingest: 'scale' also runs serve --workers on PostgreSQL + NATS, beside embedded; "
        "explorer: 'postgres' also runs the query on a PostgreSQL store, beside embedded",
    )
    p.add_argument("--workers", type=int, default=2, help="ingest --backend scale: processes")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handler: Handler = args.handler
    return handler(args)


if __name__ == "__main__":
    sys.exit(main())
