"""Command forms generated from a template's DTDL commands, and their answers read back.

A request schema becomes inputs: a number, a checkbox, a text field or a select (enums)
for a primitive; one input per field for an object of such fields; a JSON text area for
anything else (maps, arrays, nested objects). :func:`request_from_form` turns the posted
fields back into the JSON request the schema describes; the hub then checks it as it
checks API calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from aislehub.errors import BadRequest
from aislehub.models.elements import Command, EnumSchema, ObjectSchema, Primitive
from aislehub.models.modelset import ResolvedModel

__all__ = ["CommandForm", "FormInput", "command_forms", "request_from_form"]

_NUMBERS = {"double", "float", "integer", "long"}


@dataclass(frozen=True, slots=True)
class FormInput:
    name: str  # the form field: "request" or "request.<field>"
    label: str
    kind: str  # number, integer, checkbox, text, select, json
    options: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CommandForm:
    component: str | None
    name: str
    label: str
    inputs: list[FormInput] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"{self.component}.{self.name}" if self.component else self.name


def command_forms(model: ResolvedModel | None) -> list[CommandForm]:
    if model is None:
        return []
    forms = []
    views = [(None, model.root), *model.components.items()]
    for component, view in views:
        for content in view.contents:
            if isinstance(content, Command):
                forms.append(_form(component, content))
    return forms


def _form(component: str | None, command: Command) -> CommandForm:
    label = _text(command.display_name) or command.name
    form = CommandForm(component, command.name, f"{component} · {label}" if component else label)
    if command.request is None:
        return form
    schema = command.request.schema
    req_label = _text(command.request.display_name) or command.request.name
    if isinstance(schema, ObjectSchema) and all(_simple(f.schema) for f in schema.fields):
        for f in schema.fields:
            form.inputs.append(
                _input(f"request.{f.name}", _text(f.display_name) or f.name, f.schema)
            )
    else:
        form.inputs.append(_input("request", req_label, schema))
    return form


def _simple(schema: Any) -> bool:
    return isinstance(schema, Primitive | EnumSchema)


def _input(name: str, label: str, schema: Any) -> FormInput:
    if isinstance(schema, EnumSchema):
        return FormInput(name, label, "select", tuple(str(v.value) for v in schema.values))
    if isinstance(schema, Primitive):
        if schema.name in _NUMBERS:
            return FormInput(
                name, label, "integer" if schema.name in ("integer", "long") else "number"
            )
        if schema.name == "boolean":
            return FormInput(name, label, "checkbox")
        return FormInput(name, label, "text")
    return FormInput(name, label, "json")


def request_from_form(form: CommandForm, posted: dict[str, str]) -> Any:
    if not form.inputs:
        return None
    if len(form.inputs) == 1 and form.inputs[0].name == "request":
        return _value(form.inputs[0], posted)
    return {i.name.split(".", 1)[1]: _value(i, posted) for i in form.inputs}


def _value(spec: FormInput, posted: dict[str, str]) -> Any:
    raw = posted.get(spec.name)
    if spec.kind == "checkbox":
        return raw is not None
    text = (raw or "").strip()
    try:
        if spec.kind == "integer":
            return int(text)
        if spec.kind == "number":
            return float(text)
        if spec.kind == "json":
            return orjson.loads(text or "null")
    except (ValueError, orjson.JSONDecodeError):
        raise BadRequest(f"{spec.label}: {text!r} is not a valid {spec.kind}.") from None
    if spec.kind == "select":
        return int(text) if text.lstrip("-").isdigit() else text
    return text


def _text(text: Any) -> str | None:
    if text is None:
        return None
    values = dict(text.values)
    return values.get("en") or next(iter(values.values()), None)
