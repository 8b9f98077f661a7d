"""``@context``: which DTDL version and which extensions apply to an element (v3 Spec §Context)."""

from __future__ import annotations

from aislehub.models.dialects import CONTEXT_DTMI, DIALECTS, V2, dtdl_version
from aislehub.models.scope import ActiveContext, JsonObj, Scope


def active_context(scope: Scope, raw: JsonObj, *, top_level: bool) -> ActiveContext:
    """The context in force for ``raw``: its own ``@context`` combined with its parent's.

    ``scope.ctx`` is the parent's context (for a top-level element, a v2 placeholder used only
    to keep parsing after an error). The v2 reference and v3 Spec want the DTDL context first;
    we accept it anywhere, because IoT Central's own exports list ``dtmi:iotcentral:context;2``
    first and must stay importable.
    """
    if "@context" not in raw:
        if top_level:
            scope.error(
                "context",
                "a top-level Interface needs '@context' with "
                "dtmi:dtdl:context;2 or dtmi:dtdl:context;3",
            )
        return scope.ctx
    values = _context_strings(scope, raw["@context"])
    versions = [v for v in (dtdl_version(value) for value in values) if v is not None]
    if top_level and not versions:
        scope.error("context", "'@context' must include dtmi:dtdl:context;2 or ;3", "@context")
    dialect = scope.ctx.dialect if not versions else DIALECTS.get(versions[-1], V2)
    extensions = _combine(scope.ctx.extensions, [v for v in values if dtdl_version(v) is None])
    return ActiveContext(dialect, extensions)


def _context_strings(scope: Scope, value: object) -> list[str]:
    values = value if isinstance(value, list) else [value]
    good: list[str] = []
    for item in values:
        if not isinstance(item, str) or not CONTEXT_DTMI.match(item):
            scope.error("context", f"{item!r} is not a context DTMI with a version", "@context")
            continue
        version = dtdl_version(item)
        if item.startswith("dtmi:dtdl:context;") and version not in DIALECTS:
            scope.error("context", f"{item} is not a DTDL version we read (2 or 3)", "@context")
            continue
        good.append(item)
    return good


def _combine(inherited: tuple[str, ...], own: list[str]) -> tuple[str, ...]:
    """v3 Spec §Context: for one de-versioned context, the value lowest in the tree wins."""
    mine = {value.partition(";")[0]: value for value in own}
    kept = [value for value in inherited if value.partition(";")[0] not in mine]
    return tuple(kept + list(mine.values()))
