"""Device templates in the hub: validated by the DTDL parser, parsed once, assigned to devices.

A template is stored as IoT Central's ``DeviceTemplate`` document (contract §2.8). Writing one
parses it (``models.load_iot_central_template``); a model that breaks a DTDL rule is refused
with each error's path and rule id. The parsed form is cached per (app, template) and
re-parsed when the stored etag changes, so property writes and commands can check values
against it without parsing per request.

Auto-assignment: a device that announces a Plug and Play model id (DPS payload ``modelId``,
or ``model-id`` in the hub CONNECT username) and has no template gets the template whose id,
or whose capability model's ``@id``, is that model id; publishing a template assigns it to
the unassociated devices that already announced it. Each assignment is a device event
``templateAssigned``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from aislehub.errors import BadRequest, Conflict, NotFound
from aislehub.models import (
    DeviceTemplate,
    ModelErrors,
    Property,
    Relationship,
    ResolvedModel,
    load_iot_central_template,
)
from aislehub.models.dialects import DTMI_V3
from aislehub.store.metadata import Device, Json, MetadataStore
from aislehub.store.templates import TemplateRecord

DEFAULT_CONTEXT = ["dtmi:iotcentral:context;2", "dtmi:dtdl:context;2"]
MAX_ERRORS_SHOWN = 10  # a broken model can hold hundreds; the first ten locate the problem
_LEADING = ("@id", "@type", "@context", "displayName", "description", "capabilityModel")


class InvalidTemplate(BadRequest):
    code = "InvalidDeviceTemplate"


@dataclass(frozen=True, slots=True)
class CompiledTemplate:
    id: str
    etag: str
    document: Json
    model: ResolvedModel
    cloud: Mapping[str, Property]
    writable: frozenset[tuple[str | None, str]]  # (component or None, property name)
    # IoT Edge modules the template declares (``EdgeModule`` relationships), by module
    # name: the model of each, rooted at the Interface its relationship targets.
    modules: Mapping[str, ResolvedModel]


def is_template_id(template_id: str) -> bool:
    """A DTMI, or an older app's ``urn:…`` id (contract §1.10)."""
    return bool(DTMI_V3.fullmatch(template_id)) or template_id.startswith("urn:")


def normalize(template_id: str, body: Mapping[str, object]) -> Json:
    """The document to store: the path id as ``@id``, IoT Central's default ``@context``,
    server-owned ``etag`` dropped, everything else (views, overrides …) kept as given."""
    doc: Json = {k: v for k, v in body.items() if k not in ("@id", "etag")}
    doc["@id"] = template_id
    doc.setdefault("@context", list(DEFAULT_CONTEXT))
    return {k: doc[k] for k in _LEADING if k in doc} | doc


def parse_document(template_id: str, document: Json) -> DeviceTemplate:
    """Check a template with the DTDL parser; ``InvalidTemplate`` (400) names each error."""
    doc = dict(document)
    if not DTMI_V3.fullmatch(template_id):
        doc.pop("@id", None)  # the parser wants a DTMI; a legacy urn id is checked apart
    try:
        return load_iot_central_template(doc)
    except ModelErrors as exc:
        shown = [str(e) for e in exc.errors[:MAX_ERRORS_SHOWN]]
        more = len(exc.errors) - len(shown)
        tail = f"; and {more} more" if more > 0 else ""
        raise InvalidTemplate(
            f"Device template {template_id!r} is not a valid model "
            f"({len(exc.errors)} error(s)): " + "; ".join(shown) + tail
        ) from None


def compile_template(record: TemplateRecord, parsed: DeviceTemplate) -> CompiledTemplate:
    model = parsed.models.root(parsed.root_id)
    views = [(None, model.root), *model.components.items()]
    writable = frozenset(
        (component, c.name)
        for component, view in views
        for c in view.contents
        if isinstance(c, Property) and c.writable
    )
    cloud = MappingProxyType({p.name: p for p in parsed.cloud_properties})
    modules = {}
    for content in model.root.contents:
        if not isinstance(content, Relationship) or not _is_edge_module(content.cotypes):
            continue
        if content.target is not None and content.target in parsed.models:
            modules[content.name] = parsed.models.root(content.target)
    return CompiledTemplate(
        record.id, record.etag, record.document, model, cloud, writable, MappingProxyType(modules)
    )


def _is_edge_module(cotypes: tuple[str, ...]) -> bool:
    return any(t in ("EdgeModule", "SemanticType/EdgeModule") for t in cotypes)


class TemplateCatalog:
    """The app's templates as the hub uses them; the store holds the documents."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store
        self._cache: dict[tuple[str, str], CompiledTemplate] = {}

    def get(self, app_id: str, template_id: str) -> CompiledTemplate | None:
        record = self._store.templates.get(app_id, template_id)
        if record is None:
            self._cache.pop((app_id, template_id), None)
            return None
        return self.compiled(record)

    def compiled(self, record: TemplateRecord) -> CompiledTemplate:
        """``record`` compiled, from the cache while its etag is unchanged."""
        cached = self._cache.get((record.app_id, record.id))
        if cached is None or cached.etag != record.etag:
            cached = compile_template(record, parse_document(record.id, record.document))
            self._cache[(record.app_id, record.id)] = cached
        return cached

    def for_device(self, device: Device) -> CompiledTemplate | None:
        return self.get(device.app_id, device.template) if device.template else None

    def exists(self, app_id: str, template_id: str) -> bool:
        return self._store.templates.exists(app_id, template_id)

    def match(self, app_id: str, model_id: str) -> str | None:
        return self._store.templates.match(app_id, model_id)

    def publish(self, app_id: str, template_id: str, body: Mapping[str, object]) -> TemplateRecord:
        """Validate and store a new version; assign it to devices that announced its model."""
        if not is_template_id(template_id):
            raise InvalidTemplate(f"{template_id!r} is not a device template id (a DTMI).")
        document = normalize(template_id, body)
        parsed = parse_document(template_id, document)
        name = document.get("displayName")
        record = TemplateRecord(
            app_id,
            template_id,
            document,
            parsed.root_id,
            name if isinstance(name, str) else None,
        )
        saved = self._store.templates.put(record)
        self._store.generation += 1
        self._cache[(app_id, template_id)] = compile_template(saved, parsed)
        models = {template_id, parsed.root_id}
        for device_id in self._store.templates.assign_unassociated(app_id, models, template_id):
            detail = {"template": template_id, "source": "templatePublished"}
            self._store.add_event(app_id, device_id, "templateAssigned", detail)
        return saved

    def delete(self, app_id: str, template_id: str) -> None:
        """Delete a template no device uses (IoT Central refuses while devices use it)."""
        if not self._store.templates.exists(app_id, template_id):
            raise NotFound(f"Device template {template_id!r} was not found.")
        in_use = self._store.templates.devices_using(app_id, template_id)
        if in_use:
            raise Conflict(
                f"Device template {template_id!r} is assigned to {in_use} device(s); "
                "migrate them to another template or delete them first."
            )
        self._store.templates.delete(app_id, template_id)
        self._store.generation += 1
        self._cache.pop((app_id, template_id), None)
