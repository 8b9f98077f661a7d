"""Interfaces (v2/v3 §Interface): identity, ``extends``, ``contents``, reusable ``schemas``.

Inline Interfaces (in ``extends`` or as a Component schema) are parsed here too and registered
like top-level ones; references between Interfaces are checked later, in ``resolve``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from aislehub.models import members
from aislehub.models.contents import parse_content
from aislehub.models.contexts import active_context
from aislehub.models.dialects import COMPLEX
from aislehub.models.elements import Content, Interface, Schema
from aislehub.models.schemas import check_usage, parse_schema
from aislehub.models.scope import (
    MAX_NESTING,
    ActiveContext,
    InterfaceOrigin,
    JsonObj,
    Partition,
    Path,
    Scope,
    items,
)

_SET_KEYS = ("contents", "schemas", "fields", "properties")
_ONE_KEYS = ("schema", "elementSchema", "mapValue", "request", "response")


def parse_interface(scope: Scope, raw: JsonObj, *, top_level: bool = False) -> str | None:
    """Parse and register one Interface; its @id, or None when it has none we can use."""
    if len(scope.path) > MAX_NESTING:
        scope.error("extends-depth", "Interfaces nest far deeper than DTDL allows; not read")
        return None
    ctx = active_context(scope, raw, top_level=top_level)
    scope = Scope(scope.path, ctx, scope.registry)
    found = members.classify(scope, raw, ("Interface",))
    cotypes = found[1] if found else ()
    iid = members.element_id(scope, raw, required=True, interface=True)
    members.undefined_members(scope, raw, "Interface", bool(cotypes))
    note = members.comment(scope, raw)
    scope = replace(scope, partition=collect_partition(scope, raw, iid or ""))
    extends, extends_paths = _extends(scope, raw)
    contents, content_paths = _contents(scope, raw)
    schemas = _schemas(scope, raw)
    if iid is None or found is None:
        return None
    scope.registry.interfaces[iid] = Interface(
        id=iid,
        dtdl_version=ctx.dialect.version,
        contents=contents,
        extends=extends,
        schemas=schemas,
        display_name=members.text(scope, raw, "displayName"),
        description=members.text(scope, raw, "description"),
        comment=note,
        contexts=_contexts(ctx),
        cotypes=cotypes,
    )
    scope.registry.origins[iid] = InterfaceOrigin(scope.path, extends_paths, content_paths)
    return iid


def _inline(scope: Scope, raw: JsonObj) -> str | None:
    """An Interface nested in another starts its own partition (v3 Spec §Partitions)."""
    return parse_interface(Scope(scope.path, scope.ctx, scope.registry), raw)


def _contexts(ctx: ActiveContext) -> tuple[str, ...]:
    return (f"dtmi:dtdl:context;{ctx.dialect.version}", *ctx.extensions)


def _extends(scope: Scope, raw: JsonObj) -> tuple[tuple[str, ...], tuple[Path, ...]]:
    found = items(raw, "extends")
    cap = scope.dialect.extends_direct_max
    if cap is not None and len(found) > cap:
        scope.error(
            "extends-count",
            f"extends lists {len(found)} Interfaces, max {cap} in DTDL v{scope.dialect.version}",
            "extends",
        )
    ids: list[str] = []
    paths: list[Path] = []
    for segment, item in found:
        at = scope.at(segment)
        target = _extends_entry(at, item)
        if target is not None:
            ids.append(target)
            paths.append(at.path)
    return tuple(ids), tuple(paths)


def _extends_entry(scope: Scope, item: object) -> str | None:
    if isinstance(item, Mapping):
        return _inline(scope, item)
    if isinstance(item, str) and scope.dialect.dtmi.match(item):
        return item
    scope.error("dtmi-syntax", f"extends entry {item!r} is neither a DTMI nor an Interface")
    return None


def _contents(scope: Scope, raw: JsonObj) -> tuple[tuple[Content, ...], tuple[Path, ...]]:
    contents: list[Content] = []
    paths: list[Path] = []
    for segment, item in items(raw, "contents"):
        at = scope.at(segment)
        if not isinstance(item, Mapping):
            # v3 Spec allows dependent references here; no real model uses them, so we don't.
            at.error("member-type", "a contents entry must be an object")
            continue
        content = parse_content(at, item, _inline)
        if content is not None:
            contents.append(content)
            paths.append(at.path)
    return tuple(contents), tuple(paths)


def _schemas(scope: Scope, raw: JsonObj) -> tuple[Schema, ...]:
    """v2/v3 §Interface schemas: complex schemas with a required @id, reusable inside."""
    result: list[Schema] = []
    for segment, item in items(raw, "schemas"):
        at = scope.at(segment)
        if not isinstance(item, Mapping):
            at.error("member-type", "a schemas entry must be an Array, Enum, Map or Object")
            continue
        if "@id" not in item:
            at.error("id-required", "a reusable schema needs '@id' to be referenced")
        schema = parse_schema(at, item)
        check_usage(at, schema)
        if schema is not None:
            result.append(schema)
    return tuple(result)


def collect_partition(scope: Scope, raw: JsonObj, owner: str) -> Partition:
    """Every complex schema with an @id inside this Interface, by @id, with its path."""
    partition = Partition(owner)
    _walk(partition, scope.path, scope.ctx, raw, root=True)
    return partition


def _walk(partition: Partition, path: Path, ctx: ActiveContext, raw: JsonObj, root: bool) -> None:
    if len(path) > MAX_NESTING:
        return  # reported by the parser when it gets there
    if not root:
        types = raw.get("@type")
        kinds = types if isinstance(types, list) else [types]
        if "Interface" in kinds:
            return  # an inline Interface is another partition
        ref = raw.get("@id")
        if isinstance(ref, str) and ref not in partition.raw and any(k in COMPLEX for k in kinds):
            partition.raw[ref] = (path, ctx, raw)
    for key in _SET_KEYS:
        for segment, item in items(raw, key):
            if isinstance(item, Mapping):
                _walk(partition, (*path, segment), ctx, item, root=False)
    for key in _ONE_KEYS:
        value = raw.get(key)
        value = value[0] if isinstance(value, list) and len(value) == 1 else value
        if isinstance(value, Mapping):
            _walk(partition, (*path, key), ctx, value, root=False)
