"""The ``Job`` body of IoT Central (contract §2.11), parsed, and the arithmetic of batches
and cancellation thresholds.

``data`` items are accepted in both spellings (``property`` and ``PropertyJobData``, …)
and stored in the spec's (§7.6); all items of a job must be of one type. Sizes:

* ``batch`` ``{"type": "number", "value": N}`` runs N devices at a time; ``percentage`` P
  runs ⌈P % of the job's devices⌉ (at least one). No ``batch``: one batch of all.
* ``cancellationThreshold`` trips when failures reach it: ``number`` N ⇒ N failed
  devices; ``percentage`` P ⇒ failed ≥ P % of the devices counted, which are the batch's
  devices with ``batch: true`` and all the job's devices otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError
from pydantic.alias_generators import to_camel

from aislehub.errors import BadRequest
from aislehub.store.jobs import Definition

Json = dict[str, Any]

# Spec value ← accepted spellings (contract §2.11 and §7.6).
DATA_TYPES = {
    "property": "property",
    "PropertyJobData": "property",
    "cloudProperty": "cloudProperty",
    "CloudPropertyJobData": "cloudProperty",
    "command": "command",
    "CommandJobData": "command",
    "deviceTemplateMigration": "deviceTemplateMigration",
    "DeviceTemplateMigrationJobData": "deviceTemplateMigration",
    "deviceManifestMigration": "deviceManifestMigration",
    "DeviceManifestMigrationJobData": "deviceManifestMigration",
}
# A job over more devices than this is refused: its device rows are written in one
# transaction at creation. 100k covers the largest fleets the benchmarks run.
MAX_JOB_DEVICES = 100_000


class _Body(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class BatchBody(_Body):
    type: Literal["number", "percentage"]
    value: Annotated[float, Field(gt=0)]


class ThresholdBody(BatchBody):
    batch: StrictBool = False


class JobDataBody(_Body):
    type: StrictStr
    target: Annotated[StrictStr, Field(min_length=1, max_length=512)] | None = None
    path: Annotated[StrictStr, Field(min_length=1, max_length=512)] | None = None
    value: Any = None
    template: Annotated[StrictStr, Field(min_length=1, max_length=512)] | None = None
    manifest: StrictStr | None = None


class DefinitionBody(_Body):
    """The fields a ``Job`` and a ``ScheduledJob`` share."""

    display_name: Annotated[StrictStr, Field(max_length=200)] | None = None
    description: Annotated[StrictStr, Field(max_length=2000)] | None = None
    group: Annotated[StrictStr, Field(min_length=1, max_length=255)]
    batch: BatchBody | None = None
    cancellation_threshold: ThresholdBody | None = None
    data: Annotated[list[JobDataBody], Field(min_length=1)]
    organizations: Annotated[list[StrictStr], Field(max_length=1)] = []


def describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ())) or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid value')}")
    return "Invalid job: " + "; ".join(parts) + "."


def parse_definition(body: Mapping[str, Any]) -> Definition:
    """A job definition from a request body; a malformed one is a 400 naming every field."""
    try:
        parsed = DefinitionBody.model_validate(body)
    except ValidationError as exc:
        raise BadRequest(describe(exc)) from None
    data = [_data_item(i, item) for i, item in enumerate(parsed.data)]
    if len({item["type"] for item in data}) > 1:
        raise BadRequest("Invalid job: every item of 'data' must be of the same type.")
    batch = None if parsed.batch is None else _size(parsed.batch, "batch")
    threshold = parsed.cancellation_threshold
    cancel: Json | None = None
    if threshold is not None:
        cancel = _size(threshold, "cancellationThreshold") | {"batch": threshold.batch}
    return Definition(
        group_id=parsed.group,
        data=data,
        display_name=parsed.display_name,
        description=parsed.description,
        batch=batch,
        cancellation_threshold=cancel,
        organizations=list(parsed.organizations),
    )


def _size(size: BatchBody, where: str) -> Json:
    if size.type == "percentage" and size.value > 100:
        raise BadRequest(f"Invalid job: {where}.value is a percentage, from 0 to 100.")
    if size.type == "number" and size.value != int(size.value):
        raise BadRequest(f"Invalid job: {where}.value counts devices: use a whole number.")
    value: float | int = int(size.value) if size.value == int(size.value) else size.value
    return {"type": size.type, "value": value}


def _data_item(index: int, item: JobDataBody) -> Json:
    kind = DATA_TYPES.get(item.type)
    where = f"data.{index}"
    if kind is None:
        raise BadRequest(
            f"Invalid job: {where}.type {item.type!r} is not one of "
            "property, cloudProperty, command, deviceTemplateMigration."
        )
    if kind == "deviceTemplateMigration":
        if item.template is None:
            raise BadRequest(f"Invalid job: {where}.template is required.")
        return {"type": kind, "template": item.template}
    if kind == "deviceManifestMigration":
        if not item.manifest:
            raise BadRequest(f"Invalid job: {where}.manifest is required.")
        return {"type": kind, "manifest": item.manifest}
    if item.target is None or item.path is None:
        missing = "target" if item.target is None else "path"
        raise BadRequest(f"Invalid job: {where}.{missing} is required.")
    return {"type": kind, "target": item.target, "path": item.path, "value": item.value}


def definition_view(d: Definition) -> Json:
    """The definition fields of a ``Job`` / ``ScheduledJob`` body, as IoT Central shows them."""
    view: Json = {}
    if d.display_name is not None:
        view["displayName"] = d.display_name
    if d.description is not None:
        view["description"] = d.description
    view["group"] = d.group_id
    if d.batch is not None:
        view["batch"] = d.batch
    if d.cancellation_threshold is not None:
        view["cancellationThreshold"] = d.cancellation_threshold
    view["data"] = d.data
    if d.organizations:
        view["organizations"] = d.organizations
    return view


def job_kind(d: Definition) -> str:
    return str(d.data[0]["type"])


# -- arithmetic ------------------------------------------------------------------------------
def batch_size(batch: Json | None, total: int) -> int:
    """Devices per batch for a job over ``total`` devices (≥ 1)."""
    if batch is None or total == 0:
        return max(total, 1)
    if batch["type"] == "number":
        return max(int(batch["value"]), 1)
    return max(math.ceil(total * float(batch["value"]) / 100), 1)


def split_batches(device_ids: list[str], batch: Json | None) -> list[list[str]]:
    size = batch_size(batch, len(device_ids))
    return [device_ids[i : i + size] for i in range(0, len(device_ids), size)]


@dataclass(frozen=True, slots=True)
class Threshold:
    """A parsed ``cancellationThreshold``."""

    type: str
    value: float
    per_batch: bool

    @classmethod
    def of(cls, raw: Json | None) -> Threshold | None:
        if raw is None:
            return None
        return cls(raw["type"], float(raw["value"]), bool(raw.get("batch", False)))

    def tripped(self, failed: int, counted: int) -> bool:
        """Whether ``failed`` failures out of ``counted`` devices reach the threshold."""
        if failed == 0:
            return False
        if self.type == "number":
            return failed >= self.value
        return counted > 0 and failed * 100 >= self.value * counted
