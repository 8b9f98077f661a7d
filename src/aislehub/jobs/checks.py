"""A job checked against its device group and device template before anything runs.

The group must exist (400 otherwise, as a device naming a missing template is); every
``data`` item of a property, cloud-property or command job names the same ``target``
template, which must exist; its ``path`` must be a writable property, a cloud property
or a command of that template, and its ``value`` must fit the schema there
(``hub.template_checks``, the checks of a single-device write; a mismatch is a 422).
Values sent as strings for numbers or booleans (IoT Central's own example sends
``"56"``) are converted first when the whole string is that number or boolean.

The devices a job targets are the group's members when it is created, narrowed to the
devices of the ``target`` template when there is one.
"""

from __future__ import annotations

from typing import Any

from aislehub.errors import BadRequest, NotFound, ValidationFailed
from aislehub.hub.template_checks import check_command, plan_property_write
from aislehub.hub.templates import CompiledTemplate, TemplateCatalog
from aislehub.jobs.model import MAX_JOB_DEVICES, Json
from aislehub.models import Schema
from aislehub.models.elements import EnumSchema, Primitive
from aislehub.query.device_filter import parse_device_filter
from aislehub.store.device_filter_sql import filter_clause
from aislehub.store.jobs import Definition
from aislehub.store.metadata import MetadataStore
from aislehub.store.schema import devices

_INTEGRAL = {"integer", "long"}
_FRACTIONAL = {"double", "float"}


def check_definition(
    store: MetadataStore, templates: TemplateCatalog, app_id: str, d: Definition
) -> Definition:
    """``d`` with its values converted to their schemas; raises on any problem."""
    if store.groups.get(app_id, d.group_id) is None:
        raise BadRequest(f"Device group {d.group_id!r} was not found.")
    kind = d.data[0]["type"]
    if kind == "deviceManifestMigration":
        raise ValidationFailed("Deployment manifests are not supported: no job can assign one.")
    if kind == "deviceTemplateMigration":
        for item in d.data:
            if not templates.exists(app_id, item["template"]):
                raise BadRequest(f"Device template {item['template']!r} was not found.")
        return d
    targets = {item["target"] for item in d.data}
    if len(targets) > 1:
        raise ValidationFailed("Every item of 'data' must target the same device template.")
    template = templates.get(app_id, targets.pop())
    if template is None:
        raise BadRequest(f"Device template {d.data[0]['target']!r} was not found.")
    d.data = [_checked(template, item) for item in d.data]
    return d


def target_devices(store: MetadataStore, app_id: str, d: Definition) -> list[str]:
    """The ids of the devices the job runs on, now (group members, of the target template)."""
    group = store.groups.get(app_id, d.group_id)
    if group is None:
        raise BadRequest(f"Device group {d.group_id!r} was not found.")
    where = filter_clause(parse_device_filter(group.filter))
    target = d.data[0].get("target")
    if target is not None:
        where = where & (devices.c.template == target)
    found = store.list_devices(app_id, 0, MAX_JOB_DEVICES + 1, where)
    if len(found) > MAX_JOB_DEVICES:
        raise ValidationFailed(
            f"Device group {d.group_id!r} holds more than {MAX_JOB_DEVICES} devices; "
            "narrow its filter or split the job."
        )
    return [device.id for device in found]


def split_path(template: CompiledTemplate, path: str) -> tuple[str | None, str]:
    component, dot, name = path.partition(".")
    if dot and component in template.model.components:
        return component, name
    return None, path


def _checked(template: CompiledTemplate, item: Json) -> Json:
    component, name = split_path(template, item["path"])
    kind = item["type"]
    try:
        if kind == "command":
            value = _coerce(_request_schema(template, component, name), item["value"])
            check_command(template, component, name, value)
        else:
            value = _coerce(_property_schema(template, component, name), item["value"])
            _check_property(template, kind, component, name, value)
    except NotFound as exc:
        raise ValidationFailed(exc.message) from None
    return {**item, "value": value}


def _check_property(
    template: CompiledTemplate, kind: str, component: str | None, name: str, value: Any
) -> None:
    is_cloud = component is None and name in template.cloud
    if kind == "cloudProperty" and not is_cloud:
        raise ValidationFailed(
            f"{name!r} is not a cloud property of device template {template.id!r}."
        )
    if kind == "property" and is_cloud:
        raise ValidationFailed(f"{name!r} is a cloud property: use a cloudProperty job.")
    plan_property_write(template, component, {name: value})


def _property_schema(template: CompiledTemplate, component: str | None, name: str) -> Schema | None:
    if component is None and name in template.cloud:
        return template.cloud[name].schema
    prop = template.model.property(component, name)
    return None if prop is None else prop.schema


def _request_schema(template: CompiledTemplate, component: str | None, name: str) -> Schema | None:
    if component is not None and component not in template.model.components:
        return None
    command = template.model.command(component, name)
    return None if command is None or command.request is None else command.request.schema


def _coerce(schema: Schema | None, value: Any) -> Any:
    """A string holding a number or boolean, as the schema's type; anything else as is."""
    if not isinstance(value, str):
        return value
    name = schema.name if isinstance(schema, Primitive) else None
    if isinstance(schema, EnumSchema) and schema.value_schema == "integer":
        name = "integer"
    text = value.strip()
    try:
        if name in _INTEGRAL:
            return int(text)
        if name in _FRACTIONAL:
            return float(text)
    except ValueError:
        return value
    if name == "boolean" and text in ("true", "false"):
        return text == "true"
    return value
