"""``parse_models``: a set of DTDL documents in, a checked ``ModelSet`` (or every error) out.

A document is one Interface or an array of Interfaces (v3 Spec §DTDL element), as Plug and
Play repositories and IoT Central exports ship them; JSON text is accepted too. Pure: no files,
no network; the caller reads the documents.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from aislehub.models.dialects import V2
from aislehub.models.errors import ModelErrors
from aislehub.models.interfaces import parse_interface
from aislehub.models.modelset import ModelSet
from aislehub.models.resolve import resolve
from aislehub.models.scope import ActiveContext, JsonObj, Registry, Scope

Document = Mapping[str, object] | list[object] | str | bytes


def parse_models(documents: Iterable[Document]) -> ModelSet:
    """Parse, resolve and check a document set; raise ``ModelErrors`` with every error found."""
    registry = Registry()
    for index, document in enumerate(documents):
        _document(registry, f"documents[{index}]", document)
    return finish(registry)


def finish(registry: Registry) -> ModelSet:
    """Cross-document checks, then the ModelSet or all the errors."""
    resolve(registry)
    if registry.sink.errors:
        raise ModelErrors(registry.sink.errors)
    return ModelSet(MappingProxyType(dict(registry.interfaces)))


def _document(registry: Registry, label: str, document: object) -> None:
    if isinstance(document, str | bytes):
        try:
            document = json.loads(document)
        except (ValueError, RecursionError) as exc:  # json.loads gives up on deep nesting
            registry.sink.add((label,), "document-shape", f"not JSON: {exc}")
            return
    if isinstance(document, Mapping):
        top_level(registry, label, document)
    elif isinstance(document, list):
        for index, item in enumerate(document):
            if isinstance(item, Mapping):
                top_level(registry, f"{label}[{index}]", item)
            else:
                registry.sink.add((f"{label}[{index}]",), "document-shape", "not an object")
    else:
        registry.sink.add((label,), "document-shape", "a document is an object or an array")


def top_level(
    registry: Registry, label: str, raw: JsonObj, inherited: ActiveContext | None = None
) -> str | None:
    """One top-level element; it must be an Interface (v3 Spec §Partitions)."""
    ref = raw.get("@id")
    scope = Scope(
        (ref if isinstance(ref, str) else label,), inherited or ActiveContext(V2), registry
    )
    types = raw.get("@type")
    if types != "Interface" and not (isinstance(types, list) and "Interface" in types):
        scope.error(
            "top-level-interface", f"a top-level element must be an Interface, not {types!r}"
        )
        return None
    return parse_interface(scope, raw, top_level=inherited is None)
