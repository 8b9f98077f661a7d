"""Checks that need the whole document set: references, cycles, depths, inherited names.

Run once after every document is parsed; errors land in the registry's sink with the path of
the reference (``extends[0]``, ``contents[3] (sensor) / schema``) that breaks the rule.
"""

from __future__ import annotations

from collections.abc import Iterator

from aislehub.models.dialects import DIALECTS
from aislehub.models.elements import (
    ArraySchema,
    Command,
    Component,
    Content,
    EnumSchema,
    MapSchema,
    ObjectSchema,
    Property,
    Relationship,
    Schema,
    Telemetry,
)
from aislehub.models.modelset import flatten
from aislehub.models.scope import Path, Registry, show


def resolve(registry: Registry) -> None:
    _schema_references(registry)
    for iid in registry.interfaces:
        _references(registry, iid)
    cyclic = _cycles(registry)
    depths = _depths(registry, cyclic)
    for iid, levels in depths.items():
        if _extends_limits(registry, iid, levels):
            _inherited(registry, iid)
            _components(registry, iid)


def _schema_references(registry: Registry) -> None:
    for path, ref in registry.pending_schemas:
        where = registry.ids.get(ref)
        if where is None:
            registry.sink.add(path, "schema-unresolved", f"no schema has @id {ref}")
        else:
            registry.sink.add(
                path,
                "schema-scope",
                f"{ref} is declared at {show(where)}; a "
                "reusable schema is visible only inside its own Interface",
            )


def _references(registry: Registry, iid: str) -> None:
    interface, origin = registry.interfaces[iid], registry.origins[iid]
    for target, path in zip(interface.extends, origin.extends_paths, strict=True):
        _interface_ref(registry, path, target, "extends")
    for content, path in zip(interface.contents, origin.content_paths, strict=True):
        if isinstance(content, Component) and content.interface_id:
            _interface_ref(registry, (*path, "schema"), content.interface_id, "component")


def _interface_ref(registry: Registry, path: Path, target: str, kind: str) -> None:
    if target in registry.interfaces:
        return
    if target in registry.ids:
        registry.sink.add(path, f"{kind}-class", f"{target} is not an Interface")
    else:
        registry.sink.add(path, f"{kind}-unresolved", f"no Interface {target} in the model")


def _cycles(registry: Registry) -> set[str]:
    """Report each ``extends`` cycle once (v3 Spec Requirement-NoPathToSelfV3).

    Iterative depth-first search: a model may hold thousands of Interfaces in a chain.
    """
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cyclic: set[str] = set()
    for start in registry.interfaces:
        if start in state:
            continue
        path, stack = [start], [_edges(registry, start)]
        state[start] = 1
        while stack:
            step = next(stack[-1], None)
            if step is None:
                state[path.pop()] = 2
                stack.pop()
                continue
            base, where = step
            if state.get(base) == 1:
                loop = path[path.index(base) :]
                cyclic.update(loop)
                chain = " → ".join([*loop, base])
                registry.sink.add(where, "extends-cycle", f"extends forms a cycle: {chain}")
            elif base in registry.interfaces and base not in state:
                state[base] = 1
                path.append(base)
                stack.append(_edges(registry, base))
    return _reaching(registry, cyclic)


def _edges(registry: Registry, iid: str) -> Iterator[tuple[str, Path]]:
    origin = registry.origins[iid]
    return zip(registry.interfaces[iid].extends, origin.extends_paths, strict=True)


def _reaching(registry: Registry, cyclic: set[str]) -> set[str]:
    """Every Interface that inherits from a cycle (walking ``extends`` backwards from it)."""
    heirs: dict[str, list[str]] = {}
    for iid, interface in registry.interfaces.items():
        for base in interface.extends:
            heirs.setdefault(base, []).append(iid)
    found, todo = set(cyclic), list(cyclic)
    while todo:
        for heir in heirs.get(todo.pop(), []):
            if heir not in found:
                found.add(heir)
                todo.append(heir)
    return found


def _depths(registry: Registry, skip: set[str]) -> dict[str, int]:
    """Longest ``extends`` path from each acyclic Interface, computed without recursion."""
    depth: dict[str, int] = {}
    for start in registry.interfaces:
        stack = [start] if start not in skip else []
        while stack:
            current = stack[-1]
            bases = [b for b in registry.interfaces[current].extends if b in registry.interfaces]
            pending = [b for b in bases if b not in depth]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            depth[current] = max((1 + depth[b] for b in bases), default=0)
    return depth


def _extends_limits(registry: Registry, iid: str, levels: int) -> bool:
    """Depth and count limits of ``extends``; True when within them."""
    dialect = DIALECTS[registry.interfaces[iid].dtdl_version]
    path = (*registry.origins[iid].path, "extends")
    if levels > dialect.extends_depth_max:
        registry.sink.add(
            path,
            "extends-depth",
            f"extends reaches {levels} levels deep, max {dialect.extends_depth_max}",
        )
        return False
    total = len({owner for owner, _ in flatten(registry.interfaces, iid)} - {iid})
    cap = dialect.extends_total_max
    if cap is not None and total > cap:
        registry.sink.add(path, "extends-count", f"{total} Interfaces inherited, max {cap}")
    return True


def _inherited(registry: Registry, iid: str) -> None:
    """Names unique among contents including inherited ones; the contents limit."""
    origin = registry.origins[iid]
    own = dict(zip(map(id, registry.interfaces[iid].contents), origin.content_paths, strict=True))
    flat = flatten(registry.interfaces, iid)
    first: dict[str, tuple[str, Content]] = {}
    for owner, content in flat:
        earlier_owner, earlier = first.setdefault(content.name, (owner, content))
        if earlier is content or earlier_owner == owner != iid:
            continue  # first use, or a clash inside a base (reported on that Interface)
        path = own.get(id(content), (*origin.path, "extends"))
        where = "in this Interface" if earlier_owner == iid else f"in {earlier_owner}"
        registry.sink.add(
            (*path, "name"),
            "name-unique",
            f"name {content.name!r} is already used {where}; names are unique among contents",
        )
    _contents_limit(registry, iid, flat)


def _contents_limit(registry: Registry, iid: str, flat: list[tuple[str, Content]]) -> None:
    dialect = DIALECTS[registry.interfaces[iid].dtdl_version]
    # v2 counts contents (incl. extends); v3 counts every element in the contents hierarchy.
    count = len(flat) if dialect.version == 2 else sum(_elements(c) for _, c in flat)
    if count > dialect.contents_max:
        what = "contents" if dialect.version == 2 else "elements under contents"
        registry.sink.add(
            (*registry.origins[iid].path, "contents"),
            "contents-count",
            f"{count} {what}, max {dialect.contents_max}",
        )


def _elements(content: Content) -> int:
    if isinstance(content, Telemetry | Property):
        return 1 + _schema_elements(content.schema)
    if isinstance(content, Command):
        payloads = [p for p in (content.request, content.response) if p is not None]
        return 1 + sum(1 + _schema_elements(p.schema) for p in payloads)
    if isinstance(content, Relationship):
        return 1 + sum(_elements(p) for p in content.properties)
    return 1


def _schema_elements(schema: Schema) -> int:
    if isinstance(schema, ArraySchema):
        return 1 + _schema_elements(schema.element)
    if isinstance(schema, MapSchema):
        return 2 + _schema_elements(schema.value)
    if isinstance(schema, ObjectSchema):
        return 1 + sum(1 + _schema_elements(f.schema) for f in schema.fields)
    return 1 + len(schema.values) if isinstance(schema, EnumSchema) else 0


def _components(registry: Registry, iid: str) -> None:
    """v2/v3 §Component: the Interface a Component names holds no Component itself."""
    interface, origin = registry.interfaces[iid], registry.origins[iid]
    for content, path in zip(interface.contents, origin.content_paths, strict=True):
        if not isinstance(content, Component) or content.interface_id not in registry.interfaces:
            continue
        inner = flatten(registry.interfaces, content.interface_id)
        nested = [c.name for _, c in inner if isinstance(c, Component)]
        if nested:
            registry.sink.add(
                (*path, "schema"),
                "component-nested",
                f"{content.interface_id} "
                f"holds Component(s) {', '.join(nested)}; Components do not nest",
            )
