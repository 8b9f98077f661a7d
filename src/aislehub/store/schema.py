"""The metadata schema, one SQLAlchemy Core ``MetaData`` for SQLite and PostgreSQL alike.

Every row belongs to an app (tenant); every primary key starts with ``app_id``.
Alembic migrations in ``store/migrations`` create exactly these tables.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

apps = sa.Table(
    "apps",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("subdomain", sa.String(63), nullable=False, unique=True),
    sa.Column("id_scope", sa.String(16), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("app_id", sa.String(64), sa.ForeignKey("apps.id"), primary_key=True),
    sa.Column("id", sa.String(128), primary_key=True),
    # SHA-256 of the whole token string; the token itself is shown once and never stored.
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("expiry", sa.DateTime(timezone=True), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

enrollment_groups = sa.Table(
    "enrollment_groups",
    metadata,
    sa.Column("app_id", sa.String(64), sa.ForeignKey("apps.id"), primary_key=True),
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("attestation", sa.JSON, nullable=False),
    sa.Column("etag", sa.String(64), nullable=False),
)

devices = sa.Table(
    "devices",
    metadata,
    sa.Column("app_id", sa.String(64), sa.ForeignKey("apps.id"), primary_key=True),
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("template", sa.String(512), nullable=True),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("provisioned", sa.Boolean, nullable=False),
    sa.Column("simulated", sa.Boolean, nullable=False),
    sa.Column("organizations", sa.JSON, nullable=False),
    # Individual attestation ({"type": "symmetricKey", "symmetricKey": {...}}) or NULL,
    # in which case the device's keys derive from its enrollment group.
    sa.Column("attestation", sa.JSON, nullable=True),
    sa.Column("enrollment_group_id", sa.String(255), nullable=True),
    sa.Column("model_id", sa.String(512), nullable=True),
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("provisioned_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_updated_at", sa.DateTime(timezone=True), nullable=False),
    # "Which devices use this template": template deletion (409) and group filters.
    sa.Index("ix_devices_template", "app_id", "template"),
)

twins = sa.Table(
    "twins",
    metadata,
    sa.Column("app_id", sa.String(64), primary_key=True),
    sa.Column("device_id", sa.String(128), primary_key=True),
    sa.Column("module_id", sa.String(128), primary_key=True),  # "" for the device twin
    sa.Column("desired", sa.JSON, nullable=False),
    sa.Column("desired_version", sa.Integer, nullable=False),
    sa.Column("desired_updated", sa.JSON, nullable=False),  # property path -> ISO time
    sa.Column("reported", sa.JSON, nullable=False),
    sa.Column("reported_version", sa.Integer, nullable=False),
    sa.Column("reported_updated", sa.JSON, nullable=False),
    # property path -> the desired $version that last wrote it (writable-property acks).
    sa.Column("desired_versions", sa.JSON, nullable=False, server_default=sa.text("'{}'")),
)

c2d_messages = sa.Table(
    "c2d_messages",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("app_id", sa.String(64), nullable=False),
    sa.Column("device_id", sa.String(128), nullable=False),
    sa.Column("properties", sa.JSON, nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # pending | completed | expired
    sa.Index("ix_c2d_device", "app_id", "device_id", "state"),
)

command_history = sa.Table(
    "command_history",
    metadata,
    sa.Column("app_id", sa.String(64), primary_key=True),
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("device_id", sa.String(128), nullable=False),
    sa.Column("module_id", sa.String(128), nullable=False),
    sa.Column("component", sa.String(128), nullable=False),
    sa.Column("name", sa.String(256), nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_cmd_device", "app_id", "device_id", "name"),
)

device_events = sa.Table(
    "device_events",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("app_id", sa.String(64), nullable=False),
    sa.Column("device_id", sa.String(128), nullable=False),
    # connected | disconnected | provisioned | templateAssigned
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_events_device", "app_id", "device_id", "at"),
)

device_templates = sa.Table(
    "device_templates",
    metadata,
    sa.Column("app_id", sa.String(64), sa.ForeignKey("apps.id"), primary_key=True),
    sa.Column("id", sa.String(512), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),  # 1, 2, … one per PUT or PATCH
    sa.Column("display_name", sa.String(512), nullable=True),
    # The capability model's @id: a device announcing it gets this template too.
    sa.Column("capability_model_id", sa.String(512), nullable=False),
    sa.Column("document", sa.JSON, nullable=False),  # the DeviceTemplate as stored
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_templates_model", "app_id", "capability_model_id"),
)

device_template_versions = sa.Table(
    "device_template_versions",
    metadata,
    sa.Column("app_id", sa.String(64), primary_key=True),
    sa.Column("template_id", sa.String(512), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("document", sa.JSON, nullable=False),
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

device_groups = sa.Table(
    "device_groups",
    metadata,
    sa.Column("app_id", sa.String(64), sa.ForeignKey("apps.id"), primary_key=True),
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("filter", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("organizations", sa.JSON, nullable=False),
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# Cloud properties (template ``["Property", "Cloud"]``): kept here, never sent to a device.
cloud_properties = sa.Table(
    "cloud_properties",
    metadata,
    sa.Column("app_id", sa.String(64), primary_key=True),
    sa.Column("device_id", sa.String(128), primary_key=True),
    sa.Column("properties", sa.JSON, nullable=False),  # name -> value
    sa.Column("updated", sa.JSON, nullable=False),  # name -> ISO time
)

# -- rules, alerts and their actions (migration 0003) ------------------------------------
rules = sa.Table(
    "rules",
    metadata,
    sa.Column("app_id", sa.String(64), sa.ForeignKey("apps.id"), primary_key=True),
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("document", sa.JSON, nullable=False),  # the rule as given (templates-format.md)
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("app_id", sa.String(64), nullable=False),
    sa.Column("rule_id", sa.String(128), nullable=False),
    sa.Column("device_id", sa.String(128), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),  # open | acknowledged | resolved
    sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("acknowledged_by", sa.String(256), nullable=True),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("resolved_by", sa.String(256), nullable=True),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Index("ix_alerts_app_state", "app_id", "state", "opened_at"),
    sa.Index("ix_alerts_rule_device", "app_id", "rule_id", "device_id", "state"),
)

alert_actions = sa.Table(
    "alert_actions",
    metadata,
    sa.Column("alert_id", sa.String(32), primary_key=True),
    sa.Column("idx", sa.Integer, primary_key=True),  # position in the rule's actions
    sa.Column("type", sa.String(16), nullable=False),
    sa.Column("spec", sa.JSON, nullable=False),  # the action as the rule had it then
    sa.Column("state", sa.String(16), nullable=False),  # pending | succeeded | failed
    sa.Column("attempts", sa.JSON, nullable=False),  # [{at, ok, detail}]
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_alert_actions_state", "state"),
)

# The rules engine's checkpoint: its log offset and its evaluators' state, written in the
# transaction that records the alerts they produced (a restart fires nothing twice).
rule_checkpoints = sa.Table(
    "rule_checkpoints",
    metadata,
    sa.Column("consumer", sa.String(64), primary_key=True),
    sa.Column("log_offset", sa.BigInteger, nullable=False),
    sa.Column("state", sa.LargeBinary, nullable=False),
    sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
)

# -- jobs (IoT Central /jobs and /scheduledJobs; aislehub.jobs runs them) -------------------
jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("app_id", sa.String(64), sa.ForeignKey("apps.id"), primary_key=True),
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("scheduled_job_id", sa.String(255), nullable=True),
    sa.Column("display_name", sa.String(200), nullable=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("group_id", sa.String(255), nullable=False),
    sa.Column("batch", sa.JSON, nullable=True),  # {"type", "value"} or NULL: one batch
    sa.Column("cancellation_threshold", sa.JSON, nullable=True),
    sa.Column("data", sa.JSON, nullable=False),  # the JobData list, spec spellings
    sa.Column("organizations", sa.JSON, nullable=False),
    # pending | running | stopped | complete | cancelled | failed
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),  # why it was cancelled or failed
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
    # The server process running the job and until when its claim holds (renewed each round).
    sa.Column("runner", sa.String(64), nullable=True),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_jobs_status", "status"),
    sa.Index("ix_jobs_schedule", "app_id", "scheduled_job_id"),
)

# One row per device a job targets, fixed when the job is created; batches are numbered.
job_devices = sa.Table(
    "job_devices",
    metadata,
    sa.Column("app_id", sa.String(64), primary_key=True),
    sa.Column("job_id", sa.String(255), primary_key=True),
    sa.Column("device_id", sa.String(128), primary_key=True),
    sa.Column("batch", sa.Integer, nullable=False),
    # pending | running | completed | failed | cancelled
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_job_devices_status", "app_id", "job_id", "status", "batch"),
)

scheduled_jobs = sa.Table(
    "scheduled_jobs",
    metadata,
    sa.Column("app_id", sa.String(64), sa.ForeignKey("apps.id"), primary_key=True),
    sa.Column("id", sa.String(255), primary_key=True),
    sa.Column("display_name", sa.String(200), nullable=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("group_id", sa.String(255), nullable=False),
    sa.Column("batch", sa.JSON, nullable=True),
    sa.Column("cancellation_threshold", sa.JSON, nullable=True),
    sa.Column("data", sa.JSON, nullable=False),
    sa.Column("organizations", sa.JSON, nullable=False),
    sa.Column("schedule", sa.JSON, nullable=False),  # {"start", "recurrence"?, "end"?}
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("completed", sa.Boolean, nullable=False),
    sa.Column("runs", sa.Integer, nullable=False),  # occurrences fired or skipped so far
    sa.Column("next_run", sa.DateTime(timezone=True), nullable=True),
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_scheduled_jobs_due", "enabled", "completed", "next_run"),
)

# -- operator UI: users (argon2 password hashes) and dashboards ----------------------------
users = sa.Table(
    "users",
    metadata,
    sa.Column("app_id", sa.String(64), sa.ForeignKey("apps.id"), primary_key=True),
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("password_hash", sa.String(256), nullable=False),  # argon2id, PHC string
    sa.Column("role", sa.String(32), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("name", name="uq_users_name"),  # a login names one user
)

dashboards = sa.Table(
    "dashboards",
    metadata,
    sa.Column("app_id", sa.String(64), sa.ForeignKey("apps.id"), primary_key=True),
    sa.Column("id", sa.String(128), primary_key=True),
    sa.Column("document", sa.JSON, nullable=False),  # as PUT, tiles opaque to the store
    sa.Column("etag", sa.String(64), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

# Tenant cells (aislehub.cells): fault domains, each with its own ingest stream and
# telemetry database. An app absent from ``app_cells`` lives in the default cell, the one
# the settings name.
cells = sa.Table(
    "cells",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("stream", sa.String(64), nullable=False, unique=True),
    sa.Column("telemetry_database", sa.Text, nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

app_cells = sa.Table(
    "app_cells",
    metadata,
    sa.Column("app_id", sa.String(64), sa.ForeignKey("apps.id"), primary_key=True),
    sa.Column("cell_id", sa.String(32), sa.ForeignKey("cells.id"), nullable=False),
    sa.Column("moved_at", sa.DateTime(timezone=True), nullable=False),
)
