"""Property writes and commands checked against the device's template (contract §2.3, §2.5).

Without a template nothing is checked (IoT Central's unmodeled device). With one:

* a property write names properties of the model (root, or inside a component) that are
  writable, with values that fit their schema (``models.validate_value``); cloud properties
  (``["Property", "Cloud"]``) are split off, to be stored in the cloud and never sent;
* a command exists in the model (root or component) and its ``request`` fits the command's
  request schema. A missing ``request`` is let through: DTDL does not make it mandatory and
  the device decides what no payload means.

Every problem of a body is reported at once, in one 422 message; an unknown component or
command in the path is a 404.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aislehub.errors import NotFound, ValidationFailed
from aislehub.hub.templates import CompiledTemplate
from aislehub.models import Schema, validate_value
from aislehub.store.metadata import Json


@dataclass(frozen=True, slots=True)
class PropertyWrite:
    desired: Json  # for the twin, nested as the body was
    cloud: Json = field(default_factory=dict)  # root cloud property -> value (None removes)


def plan_property_write(
    template: CompiledTemplate | None, component: str | None, body: Json
) -> PropertyWrite:
    if template is None:
        return PropertyWrite(body)
    problems: list[str] = []
    if component is not None:
        require_component(template, component)
        for name, value in body.items():
            _check_writable(template, component, name, value, problems)
        _raise_if_any(template, problems)
        return PropertyWrite(body)
    desired: Json = {}
    cloud: Json = {}
    for name, value in body.items():
        target = cloud if name in template.cloud else desired
        target[name] = value
        _check_root_key(template, name, value, problems)
    _raise_if_any(template, problems)
    return PropertyWrite(desired, cloud)


def check_command(
    template: CompiledTemplate | None, component: str | None, name: str, request: Any
) -> None:
    if template is None:
        return
    if component is not None:
        require_component(template, component)
    where = _where(component, name)
    command = template.model.command(component, name)
    if command is None:
        raise NotFound(f"Command {where!r} is not in device template {template.id!r}.")
    if request is None:
        return
    if command.request is None:
        raise ValidationFailed(f"Command {where!r} takes no request; send none.")
    problems = _mismatches(command.request.schema, request, "request")
    if problems:
        raise ValidationFailed(
            f"The request of command {where!r} does not fit device template "
            f"{template.id!r}: " + "; ".join(problems) + "."
        )


def require_component(template: CompiledTemplate, component: str) -> None:
    if component not in template.model.components:
        raise NotFound(f"Component {component!r} is not in device template {template.id!r}.")


def _check_root_key(template: CompiledTemplate, name: str, value: Any, out: list[str]) -> None:
    cloud = template.cloud.get(name)
    if cloud is not None:
        if value is not None:
            out.extend(_mismatches(cloud.schema, value, name))
    elif name in template.model.components:
        if not isinstance(value, dict):
            out.append(f"{name!r} is a component: write an object of its properties")
            return
        for inner, inner_value in value.items():
            _check_writable(template, name, inner, inner_value, out)
    else:
        _check_writable(template, None, name, value, out)


def _check_writable(
    template: CompiledTemplate, component: str | None, name: str, value: Any, out: list[str]
) -> None:
    where = _where(component, name)
    prop = template.model.property(component, name)
    if prop is None:
        out.append(f"{where!r} is not a property of the template")
    elif not prop.writable:
        out.append(f"{where!r} is not writable (the device reports it)")
    elif value is not None:  # null removes the desired value
        out.extend(_mismatches(prop.schema, value, where))


def _mismatches(schema: Schema, value: Any, where: str) -> list[str]:
    """``validate_value``'s messages, their ``$`` path rooted at ``where``."""
    return [where + message[1:] for message in validate_value(schema, value)]


def _where(component: str | None, name: str) -> str:
    return f"{component}.{name}" if component else name


def _raise_if_any(template: CompiledTemplate, problems: list[str]) -> None:
    if problems:
        raise ValidationFailed(
            f"The properties do not fit device template {template.id!r}: "
            + "; ".join(problems)
            + "."
        )
