"""The metrics explorer: one query model behind the API, the web UI and the exports.

Layers: ``model`` (what a query asks, parsed from its JSON form and checked), ``planner``
(one DuckDB statement per query: rollups when the grain allows, raw points when it must,
min/max per pixel bucket for raw charts), ``run`` (scope and split resolved from the
metadata store, the statement run, the rows turned into aligned columns) and ``export``
(CSV, Parquet and Arrow of exactly what is charted).
"""

from aislehub.explorer.model import ExplorerQuery, Split, parse_explorer_query
from aislehub.explorer.run import ExplorerResult, run_explorer_query

__all__ = [
    "ExplorerQuery",
    "ExplorerResult",
    "Split",
    "parse_explorer_query",
    "run_explorer_query",
]
