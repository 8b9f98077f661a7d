"""Reading members of a DTDL element: literals, localizable strings, @type, @id, undefined members.

Each reader reports what is wrong through the scope and returns None, so the caller can go on
and find more errors in the same document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aislehub.models.dialects import CONTEXT_DTMI, MEMBERS, NAME, RESERVED_PREFIXES
from aislehub.models.elements import Text
from aislehub.models.scope import JsonObj, Scope

_CLASS_PREFIXES = ("dtmi:dtdl:class:", "dtmi:standard:class:")  # v2/v3 Reserved strings


def one(scope: Scope, raw: JsonObj, key: str) -> object:
    """A single-valued member, None when absent or broken (and then reported).

    v3 Spec allows "an array containing exactly one" value and @value literal objects.
    """
    if key not in raw:
        return None
    value = raw[key]
    if isinstance(value, list):
        if len(value) != 1:
            scope.error("member-type", f"'{key}' must hold exactly one value", key)
            return None
        value = value[0]
    if isinstance(value, Mapping) and "@value" in value:  # v3 Spec §Representational literal
        value = value["@value"]
    if value is None:
        scope.error("member-type", f"'{key}' must not be null", key)
    return value


def string(scope: Scope, raw: JsonObj, key: str, *, required: bool = False) -> str | None:
    if key not in raw:
        if required:
            scope.error("member-required", f"'{key}' is required")
        return None
    value = one(scope, raw, key)
    if value is not None and not isinstance(value, str):
        scope.error("member-type", f"'{key}' must be a string", key)
        return None
    return value


def boolean(scope: Scope, raw: JsonObj, key: str) -> bool | None:
    value = one(scope, raw, key)
    if value is not None and not isinstance(value, bool):
        scope.error("member-type", f"'{key}' must be true or false", key)
        return None
    return value


def integer(scope: Scope, raw: JsonObj, key: str) -> int | None:
    value = one(scope, raw, key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        scope.error("member-type", f"'{key}' must be an integer", key)
        return None
    return value


def name(scope: Scope, raw: JsonObj) -> str | None:
    """The required ``name`` (v2/v3 §<class> name: pattern and length)."""
    value = string(scope, raw, "name", required=True)
    if value is None:
        return None
    if not NAME.match(value):
        scope.error(
            "name-pattern",
            f"name {value!r} must start with a letter, hold only letters, "
            "digits and '_', and end with a letter or digit",
            "name",
        )
    if len(value) > scope.dialect.name_max:
        scope.error(
            "name-length",
            f"name is {len(value)} characters, max "
            f"{scope.dialect.name_max} in DTDL v{scope.dialect.version}",
            "name",
        )
    return value


def text(scope: Scope, raw: JsonObj, key: str) -> Text | None:
    """A localizable string: a string, a language map, or an array of language-tagged values."""
    value = raw.get(key)
    if value is None:
        return None
    limit = scope.dialect.display_name_max if key == "displayName" else scope.dialect.text_max
    pairs = _language_pairs(scope.at(key), value)
    if pairs is None:
        return None
    for language, content in pairs:
        if len(content) > limit:
            scope.error(
                "text", f"{key} ({language}) is {len(content)} characters, max {limit}", key
            )
    return Text(tuple(pairs)) if pairs else None


def _language_pairs(scope: Scope, value: object) -> list[tuple[str, str]] | None:
    items: list[tuple[str, object]] = []
    if isinstance(value, str):
        items = [("en", value)]
    elif isinstance(value, Mapping) and "@value" not in value:
        items = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, Mapping):
                items.append((str(item.get("@language", "en")), item.get("@value")))
            else:
                items.append(("en", item))
    else:
        scope.error("text", "must be a string, a language map or an array of strings")
        return None
    return _checked_pairs(scope, items)


def _checked_pairs(scope: Scope, items: list[tuple[str, object]]) -> list[tuple[str, str]] | None:
    pairs: list[tuple[str, str]] = []
    for language, content in items:
        if not isinstance(content, str):
            scope.error("text", f"the {language!r} text must be a string")
            return None
        if not scope.dialect.language_tag.match(language):
            scope.error("text", f"{language!r} is not a language tag")
            return None
        pairs.append((language, content))
    return pairs


def comment(scope: Scope, raw: JsonObj) -> str | None:
    value = string(scope, raw, "comment")
    if value is not None and len(value) > scope.dialect.text_max:
        scope.error("text", f"comment is {len(value)} characters, max 512", "comment")
    return value


def classify(
    scope: Scope, raw: JsonObj, allowed: Sequence[str], implied: str | None = None
) -> tuple[str, tuple[str, ...]] | None:
    """The element's class among ``allowed`` and its co-types (v3 Spec §<class> @type).

    ``implied`` is the class of elements whose @type is optional (Field, EnumValue, MapKey …).
    """
    types = _type_strings(scope, raw)
    if types is None:
        if implied is None:
            scope.error("type-required", "'@type' is required")
        return None if implied is None else (implied, ())
    found = [t for t in types if t in allowed]
    if len(found) != 1:
        want = " or ".join(allowed)
        what = "none" if not found else " and ".join(found)
        scope.error(
            "type-class", f"'@type' must include exactly one of {want} (has {what})", "@type"
        )
        return None
    return found[0], tuple(t for t in types if t != found[0])


def _type_strings(scope: Scope, raw: JsonObj) -> list[str] | None:
    value = raw.get("@type")
    if value is None:
        return None
    values = value if isinstance(value, list) else [value]
    types: list[str] = []
    for item in values:
        if not isinstance(item, str):
            scope.error("type-syntax", "'@type' must be a string or an array of strings", "@type")
            continue
        if item.startswith("dtmi:") and not CONTEXT_DTMI.match(item):
            scope.error("type-syntax", f"{item!r} is not a valid DTMI", "@type")
        elif ":" in item and not item.startswith("dtmi:") and scope.dialect.version >= 3:
            scope.error("type-syntax", f"{item!r} has ':' but is not a DTMI", "@type")
        types.append(_term(item))
    return types


def _term(value: str) -> str:
    for prefix in _CLASS_PREFIXES:
        if value.startswith(prefix):
            return value[len(prefix) :].partition(";")[0]
    return value


def undefined_members(
    scope: Scope, raw: JsonObj, cls: str, cotyped: bool, extra: Sequence[str] = ()
) -> None:
    """v2 §Undefined co-types and properties: an undefined member needs an undefined co-type."""
    allowed = MEMBERS[cls]
    for key in raw:
        if key.startswith("@"):
            if key not in allowed and (scope.dialect.keywords_forbidden or key == "@graph"):
                scope.error("keyword", f"'{key}' is not allowed on a DTDL element", key)
        elif key not in allowed and key not in extra and not cotyped and not scope.ctx.open_world:
            scope.error("member-undefined", f"'{key}' is not a member of {cls}", key)


def element_id(
    scope: Scope, raw: JsonObj, *, required: bool, interface: bool = False
) -> str | None:
    """Check ``@id``: DTMI syntax, reserved prefixes, length, uniqueness in the model."""
    value = raw.get("@id")
    if value is None:
        if required:
            scope.error("id-required", "'@id' is required")
        return None
    if not isinstance(value, str) or not scope.dialect.dtmi.match(value):
        scope.error(
            "dtmi-syntax",
            f"{value!r} is not a DTMI (dtmi:<segments>;<version>) "
            f"valid in DTDL v{scope.dialect.version}",
            "@id",
        )
        return None
    _id_limits(scope, value, interface)
    if value in scope.registry.ids:  # each element is read once: a second sighting is a twin
        first = " / ".join(scope.registry.ids[value])
        scope.error("id-duplicate", f"{value} is defined twice (first at {first})", "@id")
    scope.registry.ids.setdefault(value, scope.path)
    return value


def _id_limits(scope: Scope, value: str, interface: bool) -> None:
    if value.startswith(RESERVED_PREFIXES):
        scope.error("dtmi-reserved", f"{value} uses a prefix reserved by DTDL", "@id")
    limit = scope.dialect.interface_id_max if interface else scope.dialect.id_max
    if len(value) > limit:
        scope.error("dtmi-length", f"@id is {len(value)} characters, max {limit}", "@id")


def unique(scope: Scope, named: list[tuple[str, str]], what: str) -> None:
    """v2/v3 §<class> name: unique among ``what``; ``named`` holds (path segment, name)."""
    seen: set[str] = set()
    for segment, label in named:
        if label in seen:
            scope.error("name-unique", f"name {label!r} is used twice in {what}", segment, "name")
        seen.add(label)
