"""Benchmarks behind ``aislehub bench``: each scenario measures itself beside a reference.

Layers: ``wire`` (what a device sends), ``publisher`` (one pipelined connection),
``generator`` (worker processes holding many connections), ``probe`` (publish → queryable
latency), ``server``/``mosquitto``/``subscriber`` (the processes under test), ``ingest``
(the scenario) and ``report`` (table or JSON); ``query`` times ``/api/query`` statements
beside hand-written SQL on one DuckDB file.
"""

from __future__ import annotations

import argparse

__all__ = ["main"]


def main(args: argparse.Namespace) -> int:
    """Run ``args.scenario``; prints figures on stdout, progress on stderr."""
    if args.scenario == "ingest":
        return _ingest(args)
    if args.scenario == "query":
        return _query(args)
    if args.scenario == "rules":
        return _rules(args)
    if args.scenario == "anomaly":
        return _anomaly(args)
    if args.scenario == "simulate":
        return _simulate(args)
    if args.scenario == "explorer":
        return _explorer(args)
    raise SystemExit(f"unknown benchmark scenario {args.scenario!r}")


def _ingest(args: argparse.Namespace) -> int:
    from aislehub.bench.ingest import IngestOptions, run_ingest
    from aislehub.bench.report import render_json, render_table

    if args.backend == "postgres":  # the explorer's: ingest compares the whole server
        raise SystemExit("ingest: --backend is 'embedded' or 'scale'")
    if args.devices < 1 or args.seconds <= 0 or args.processes < 1 or args.window < 1:
        raise SystemExit("--devices, --seconds, --processes and --window must be positive")
    opts = IngestOptions(
        devices=args.devices,
        seconds=args.seconds,
        processes=args.processes,
        window=args.window,
        tls=not args.no_tls,
        typed=not args.no_typed,
        reference=not args.no_reference,
        backend=args.backend,
        workers=args.workers,
    )
    figures = run_ingest(opts)
    print(render_json(figures) if args.json else render_table(figures), flush=True)
    return 0


def _rules(args: argparse.Namespace) -> int:
    from aislehub.bench.report import render_json
    from aislehub.bench.rules import RulesOptions, render_rules_table, run_rules_bench

    if min(args.devices, args.processes, args.window, args.rounds) < 1 or args.seconds <= 0:
        raise SystemExit(
            "--devices, --seconds, --processes, --window and --rounds must be positive"
        )
    opts = RulesOptions(args.devices, args.seconds, args.processes, args.window, rounds=args.rounds)
    figures = run_rules_bench(opts)
    print(render_json(figures) if args.json else render_rules_table(figures), flush=True)
    return 0


def _query(args: argparse.Namespace) -> int:
    from aislehub.bench.query import QueryOptions, render_query_table, run_query_bench
    from aislehub.bench.report import render_json

    if args.rows < 2 or args.devices < 1 or args.repeat < 1:
        raise SystemExit("--rows (at least 2), --devices and --repeat must be positive")
    opts = QueryOptions(rows=args.rows, devices=args.devices, repeat=args.repeat)
    figures = run_query_bench(opts)
    print(render_json(figures) if args.json else render_query_table(figures), flush=True)
    return 0


def _anomaly(args: argparse.Namespace) -> int:
    import sys

    from aislehub.bench.anomaly import AnomalyOptions, render_anomaly_table, run_anomaly_bench
    from aislehub.bench.report import render_json

    devices = 24 if args.devices == 1000 else args.devices  # 1000 is ingest's default
    opts = AnomalyOptions(devices=devices, days=args.days)
    figures = run_anomaly_bench(opts, lambda line: print(line, file=sys.stderr, flush=True))
    print(render_json(figures) if args.json else render_anomaly_table(figures), flush=True)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from aislehub.bench.report import render_json
    from aislehub.bench.simulate import render_simulate_table, run_simulate_bench

    seconds = min(args.seconds, 30.0)  # the whole run stays within about a minute
    figures = run_simulate_bench(args.devices, seconds)
    print(render_json(figures) if args.json else render_simulate_table(figures), flush=True)
    return 0


def _explorer(args: argparse.Namespace) -> int:
    from aislehub.bench.explorer import (
        ExplorerOptions,
        render_explorer_table,
        run_explorer_bench,
    )
    from aislehub.bench.report import render_json

    if args.devices < 1 or args.hours <= 0 or args.repeat < 1:
        raise SystemExit("--devices, --hours and --repeat must be positive")
    if args.backend not in ("embedded", "postgres"):
        raise SystemExit("explorer: --backend is 'embedded' or 'postgres'")
    opts = ExplorerOptions(
        devices=args.devices,
        hours=args.hours,
        repeat=args.repeat,
        chart_points=args.chart_points,
        browser=not args.no_browser,
        backend=args.backend,
    )
    figures = run_explorer_bench(opts)
    print(render_json(figures) if args.json else render_explorer_table(figures), flush=True)
    return 0
