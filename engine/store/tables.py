"""The database schema, as SQLAlchemy Core tables (the hot path uses Core, not the ORM).

Any change here needs a migration in ``engine/migrations/versions``;
``tests/test_db.py`` checks that the migrations produce exactly this schema.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator, TypeEngine

from engine.clock import as_utc

__all__ = [
    "JSONDocument",
    "UTCDateTime",
    "case_assignments",
    "case_parties",
    "case_transfers",
    "cases",
    "deliveries",
    "grid_stamp",
    "history",
    "id_counters",
    "idempotency",
    "metadata",
    "notification_reads",
    "notifications",
    "overdue_facts",
    "patrol_cases",
    "patrol_missed",
    "patrol_periods",
    "patrol_photos",
    "patrol_rules",
    "patrols",
    "people",
    "person_credentials",
    "person_roles",
    "state_entries",
    "supervisions",
    "survey_findings",
    "system_values",
    "timers",
    "tokens",
    "ui_sessions",
    "units",
    "workflow_activations",
    "workflow_versions",
]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and read back timezone-aware in UTC, on every backend.

    PostgreSQL stores ``timestamptz``; SQLite stores naive UTC text, which sorts
    correctly.  Naive datetimes are refused on the way in.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        utc = as_utc(value)
        return utc if dialect.name == "postgresql" else utc.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return as_utc(value)


# JSON text on SQLite, JSONB on PostgreSQL.
JSONDocument: TypeEngine[Any] = JSON().with_variant(JSONB(), "postgresql")
# The same, where Python None means SQL NULL (not the JSON value null): an optional document.
OptionalJSON: TypeEngine[Any] = JSON(none_as_null=True).with_variant(
    JSONB(none_as_null=True), "postgresql"
)


def _bool(default: bool) -> Any:
    return text("true") if default else text("false")


units = Table(
    "units",
    metadata,
    Column("code", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("level", Text, nullable=False),
    Column("parent_code", Text, ForeignKey("units.code"), nullable=True),
    Column("path", Text, nullable=False),  # "/ddk/ddk-bq/ddk-bq-xh/"
    Column("depth", Integer, nullable=False),
    Column("active", Boolean, nullable=False, server_default=_bool(True)),
    # The unit's area as a GeoJSON Polygon or MultiPolygon (lng/lat), when the grid
    # file gives one: spots are assigned to the lowest unit containing them.
    Column("boundary", OptionalJSON, nullable=True),
    Index("ix_units_parent_code", "parent_code"),
    Index("ix_units_path", "path"),
)

people = Table(
    "people",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("phone", Text, nullable=True),
    Column("email", Text, nullable=True),
    Column("webhook", Text, nullable=True),
    Column("active", Boolean, nullable=False, server_default=_bool(True)),
    Column("kind", Text, nullable=False, server_default=text("'person'")),
)

person_roles = Table(
    "person_roles",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("person_id", Text, ForeignKey("people.id"), nullable=False),
    Column("unit_code", Text, ForeignKey("units.code"), nullable=False),
    Column("role", Text, nullable=False),
    Column("active", Boolean, nullable=False, server_default=_bool(True)),
    UniqueConstraint("person_id", "unit_code", "role"),
    Index("ix_person_roles_unit_code_role", "unit_code", "role"),
)

workflow_versions = Table(
    "workflow_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workflow", Text, nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("path", Text, nullable=True),
    Column("loaded_at", UTCDateTime, nullable=False),
    UniqueConstraint("workflow", "version"),
    UniqueConstraint("workflow", "content_hash"),
)

# The day's last sequence number per id prefix (C: cases, P: patrols), see engine/cases/ids.py.
id_counters = Table(
    "id_counters",
    metadata,
    Column("prefix", Text, nullable=False),
    Column("day", Text, nullable=False),  # YYYYMMDD
    Column("last", Integer, nullable=False),
    PrimaryKeyConstraint("prefix", "day"),
)

# One row: a number the grid's triggers bump on every change to units, people or
# roles (migration 0014), so a process can cache what actors hold (engine/grid/held.py).
grid_stamp = Table(
    "grid_stamp",
    metadata,
    Column("id", Integer, nullable=False),
    Column("version", BigInteger, nullable=False),
    PrimaryKeyConstraint("id"),
    CheckConstraint("id = 1", name="one_row"),
)

# Which version of a workflow new cases get: the newest activation (by id).
# Registering new content activates it; loading content identical to an older
# version activates that version again (a revert).  ``path`` is the file it
# was loaded from (resolved), so a folder sync can tell whether the file
# changed since it last activated something.
workflow_activations = Table(
    "workflow_activations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("workflow", Text, nullable=False),
    Column("definition_id", Integer, ForeignKey("workflow_versions.id"), nullable=False),
    Column("activated_at", UTCDateTime, nullable=False),
    Column("path", Text, nullable=True),
    Index("ix_workflow_activations_workflow", "workflow"),
)

cases = Table(
    "cases",
    metadata,
    Column("id", Text, primary_key=True),
    Column("workflow", Text, nullable=False),
    Column("definition_id", Integer, ForeignKey("workflow_versions.id"), nullable=False),
    Column("state", Text, nullable=False),
    Column("unit_code", Text, ForeignKey("units.code"), nullable=False),
    Column("data", JSONDocument, nullable=False),
    Column("revision", Integer, nullable=False),  # one more with every history row
    Column("escalation_level", Integer, nullable=False, server_default=text("0")),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("state_entered_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("deadline_at", UTCDateTime, nullable=True),  # the current state's deadline
    Column("head_hash", Text, nullable=True),  # hash of the newest history row
    Column("updated_at", UTCDateTime, nullable=False),
    Column("created_by", Text, nullable=False),
    Index("ix_cases_workflow_state", "workflow", "state"),
    Index("ix_cases_unit_code", "unit_code"),
    Index("ix_cases_closed_at", "closed_at"),
)

history = Table(
    "history",
    metadata,
    Column("case_id", Text, ForeignKey("cases.id"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", Text, nullable=False),
    Column("trigger", Text, nullable=False),
    Column("from_state", Text, nullable=True),
    Column("to_state", Text, nullable=False),
    Column("payload", JSONDocument, nullable=False),
    Column("definition_id", Integer, nullable=False),
    Column("prev_hash", Text, nullable=False),
    Column("hash", Text, nullable=False),
    # how ``hash`` was computed (engine/cases/history.py); rows from before 0008 are scheme 1
    Column("hash_scheme", Integer, nullable=False, server_default=text("1")),
    PrimaryKeyConstraint("case_id", "seq"),
)

state_entries = Table(
    "state_entries",
    metadata,
    Column("case_id", Text, ForeignKey("cases.id"), nullable=False),
    Column("state", Text, nullable=False),
    Column("first_entered_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("case_id", "state"),
)

idempotency = Table(
    "idempotency",
    metadata,
    Column("actor", Text, nullable=False),
    Column("key", Text, nullable=False),
    Column("request_hash", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("response", JSONDocument, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("actor", "key"),
)

# Timers are rows: a state's deadline, its reminders and escalation rungs are
# written in the transaction that enters the state and cancelled in the one
# that leaves it.  ``case_revision`` is the case revision that entered the
# state: a timer fires only while the case is still at that revision.
# Patrol-obligation timers (kind ``patrol``, see engine/patrols/obligations.py)
# have no case: ``rule_id`` and ``period_start`` name the rule and period,
# ``state`` the step (remind | close | escalate), ``case_revision`` is 0.
timers = Table(
    "timers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Text, ForeignKey("cases.id"), nullable=True),
    Column("state", Text, nullable=False),
    Column("case_revision", Integer, nullable=False),
    Column("kind", Text, nullable=False),  # deadline | reminder | escalation
    Column("rung", Integer, nullable=True),
    Column("deadline_at", UTCDateTime, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("repeat_seconds", Integer, nullable=True),
    Column("status", Text, nullable=False),  # pending | firing | fired | cancelled | failed
    Column("created_at", UTCDateTime, nullable=False),
    Column("fired_at", UTCDateTime, nullable=True),
    Column("fired_by", Text, nullable=True),
    Column("rule_id", Text, nullable=True),
    Column("period_start", UTCDateTime, nullable=True),
    # What firing did ("reminder queued", "skipped: deadline passed", ...), and
    # the failure record of a timer whose effects raised (status ``failed``):
    # the sweep retries it at ``next_attempt_at`` (NULL: attempts exhausted).
    Column("detail", Text, nullable=True),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text, nullable=True),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    # A collaboration duty's timer (kind ``party.*``, ``transfer.*``, ``ack.*``,
    # ``supervision.*``): the id of its row in that duty's table.
    Column("subject_id", Integer, nullable=True),
    Index(
        "ix_timers_pending_due",
        "due_at",
        sqlite_where=text("status = 'pending'"),
        postgresql_where=text("status = 'pending'"),
    ),
    Index(
        "ix_timers_failed_next_attempt",
        "next_attempt_at",
        sqlite_where=text("status = 'failed'"),
        postgresql_where=text("status = 'failed'"),
    ),
    Index("ix_timers_case_id_status", "case_id", "status"),
    # Patrol-period timers only: a case's timers (no rule) take no entry here.
    Index(
        "ix_timers_rule_id_status",
        "rule_id",
        "status",
        sqlite_where=text("rule_id IS NOT NULL"),
        postgresql_where=text("rule_id IS NOT NULL"),
    ),
)

# What assessment counts: a deadline that passed (rung NULL) and each rung
# that escalated, with the state and deadline it belonged to.
overdue_facts = Table(
    "overdue_facts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Text, ForeignKey("cases.id"), nullable=False),
    Column("unit_code", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("deadline_at", UTCDateTime, nullable=False),
    Column("rung", Integer, nullable=True),
    Column("level", Integer, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("timer_id", Integer, nullable=False),
    # What went overdue: NULL for the state's own deadline, else the duty kind
    # (party | transfer | ack | supervision); the person answerable, when one was.
    Column("duty", Text, nullable=True),
    Column("person_id", Text, nullable=True),
    UniqueConstraint("timer_id"),
    Index("ix_overdue_facts_case_id", "case_id"),
)

# The notification outbox: one row per thing to tell, written in the same
# transaction as its cause; the dispatcher resolves recipients and channels.
notifications = Table(
    "notifications",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Text, ForeignKey("cases.id"), nullable=True),
    Column("kind", Text, nullable=False),  # transition | reminder | escalation
    Column("template", Text, nullable=False),
    Column("roles", JSONDocument, nullable=False),
    Column("context", JSONDocument, nullable=False),
    Column("dedupe_key", Text, nullable=False),
    Column("status", Text, nullable=False),  # pending | sent | undeliverable | dead
    Column("created_at", UTCDateTime, nullable=False),
    # The unit whose chain resolves the roles when there is no case (patrol notices).
    Column("unit_code", Text, nullable=True),
    # 1 = urgent (a transition marked ``urgent: true``): expanded and sent first.
    Column("priority", Integer, nullable=False, server_default=text("0")),
    UniqueConstraint("dedupe_key"),
    Index("ix_notifications_status", "status"),
    Index("ix_notifications_case_id", "case_id"),
)

# One row per (notification, channel, address): what the dispatcher sends,
# retries with backoff, and finally marks sent or dead.  A claim is a lease
# (``claimed_until``): a dispatcher that dies mid-send loses its claim when
# the lease runs out, and the row is sent again under the same dedupe key.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("notification_id", Integer, ForeignKey("notifications.id"), nullable=False),
    Column("person_id", Text, nullable=True),
    Column("channel", Text, nullable=False),
    Column("address", Text, nullable=False),
    Column("dedupe_key", Text, nullable=False),
    Column("status", Text, nullable=False),  # pending | sending | sent | dead | skipped
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_until", UTCDateTime, nullable=True),
    Column("claimed_by", Text, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("priority", Integer, nullable=False, server_default=text("0")),  # its notification's
    UniqueConstraint("dedupe_key"),
    Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    # Each channel claims its own due rows: another channel's backlog is not scanned.
    Index("ix_deliveries_channel_status_next_attempt_at", "channel", "status", "next_attempt_at"),
    Index("ix_deliveries_notification_id", "notification_id"),
)

# API tokens: only the SHA-256 of a token is stored; the token itself is shown
# once, when it is created.  ``id`` is the public handle (``token list``,
# ``token revoke``) and is also written inside the token text.
tokens = Table(
    "tokens",
    metadata,
    Column("id", Text, primary_key=True),
    Column("actor", Text, ForeignKey("people.id"), nullable=False),
    Column("name", Text, nullable=True),
    Column("secret_hash", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
    UniqueConstraint("secret_hash"),
    Index("ix_tokens_actor", "actor"),
)

# ---------------------------------------------------------------- patrols (巡查)
# The patrol ledger (巡查台账): one row per patrol, with the cases it opened.
patrols = Table(
    "patrols",
    metadata,
    Column("id", Text, primary_key=True),  # P20260918-0001 (engine/cases/ids.py)
    Column("unit_code", Text, ForeignKey("units.code"), nullable=False),
    Column("actor", Text, ForeignKey("people.id"), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime, nullable=True),
    Column("route", JSONDocument, nullable=True),  # [[lng, lat], ...]
    Column("area_m2", Float, nullable=True),
    Column("findings", Text, nullable=True),
    Column("suspected", JSONDocument, nullable=False),  # suspected violations, a list
    Column("attachments", JSONDocument, nullable=False),  # file names or URLs
    Column("recorded_at", UTCDateTime, nullable=False),
    Index("ix_patrols_unit_code_started_at", "unit_code", "started_at"),
    Index("ix_patrols_started_at", "started_at"),
)

patrol_cases = Table(
    "patrol_cases",
    metadata,
    Column("patrol_id", Text, ForeignKey("patrols.id"), nullable=False),
    Column("case_id", Text, ForeignKey("cases.id"), nullable=False),
    PrimaryKeyConstraint("patrol_id", "case_id"),
    Index("ix_patrol_cases_case_id", "case_id"),
)

# Photos of a patrol, content-addressed: the file is ``data_dir/photos/ab/cdef…`` by its
# SHA-256 (engine/patrols/photos.py), stored once however many patrols show it.
patrol_photos = Table(
    "patrol_photos",
    metadata,
    Column("patrol_id", Text, ForeignKey("patrols.id"), nullable=False),
    Column("sha256", Text, nullable=False),
    Column("bytes", Integer, nullable=False),
    Column("media_type", Text, nullable=False),  # image/jpeg | image/png | image/webp | image/heic
    Column("uploaded_by", Text, ForeignKey("people.id"), nullable=False),
    Column("uploaded_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("patrol_id", "sha256"),
    Index("ix_patrol_photos_sha256", "sha256"),
)

# Patrol obligations as loaded by ``gengbao patrol rules load``; ``active``
# marks the current set (a rule dropped from the file is deactivated).
patrol_rules = Table(
    "patrol_rules",
    metadata,
    Column("id", Text, primary_key=True),  # LEVEL-EVERY: village-week, town-month, group-14d
    Column("level", Text, nullable=False),
    Column("every", Text, nullable=False),
    Column("times", Integer, nullable=False),
    Column("roles", JSONDocument, nullable=False),
    Column("remind", JSONDocument, nullable=False),
    Column("escalate", JSONDocument, nullable=False),
    Column("timezone", Text, nullable=False),
    Column("content_hash", Text, nullable=False),
    Column("source", Text, nullable=True),
    Column("active", Boolean, nullable=False, server_default=_bool(True)),
    Column("loaded_at", UTCDateTime, nullable=False),
)

# One row per (rule, unit, period): how many patrols it needs and has had.
# ``done`` counts patrols by the rule's roles recorded while the period was open.
patrol_periods = Table(
    "patrol_periods",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule_id", Text, ForeignKey("patrol_rules.id"), nullable=False),
    Column("unit_code", Text, ForeignKey("units.code"), nullable=False),
    Column("period_start", UTCDateTime, nullable=False),
    Column("period_end", UTCDateTime, nullable=False),
    Column("required", Integer, nullable=False),
    Column("done", Integer, nullable=False, server_default=text("0")),
    Column("status", Text, nullable=False),  # open | met | missed | void
    Column("closed_at", UTCDateTime, nullable=True),
    UniqueConstraint("rule_id", "unit_code", "period_start"),
    Index("ix_patrol_periods_period_end", "period_end"),
    Index("ix_patrol_periods_rule_id_period_start_status", "rule_id", "period_start", "status"),
)

# Missed-patrol facts: a period that closed with fewer patrols than required.
# ``level`` is the highest escalation rung fired for it (0: none yet).
patrol_missed = Table(
    "patrol_missed",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule_id", Text, nullable=False),
    Column("unit_code", Text, nullable=False),
    Column("period_start", UTCDateTime, nullable=False),
    Column("period_end", UTCDateTime, nullable=False),
    Column("done", Integer, nullable=False),
    Column("required", Integer, nullable=False),
    Column("level", Integer, nullable=False, server_default=text("0")),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("timer_id", Integer, nullable=True),
    UniqueConstraint("rule_id", "unit_code", "period_start"),
    Index("ix_patrol_missed_period_end", "period_end"),
)

# Findings of the annual land-change survey (年度变更调查) and satellite spots
# (卫片图斑), imported from CSV; the assessment decides which the grid missed.
# ``found_until`` is 24:00 local of ``found_on``; ``m_per_deg_lng``/``_lat`` are
# metres per degree at ``lat`` (distances in SQL without trigonometry).
survey_findings = Table(
    "survey_findings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ref", Text, nullable=False),
    Column("unit_code", Text, ForeignKey("units.code"), nullable=False),
    Column("found_on", Date, nullable=False),
    Column("found_until", UTCDateTime, nullable=False),
    Column("area_m2", Float, nullable=True),
    Column("lng", Float, nullable=True),
    Column("lat", Float, nullable=True),
    Column("m_per_deg_lng", Float, nullable=True),
    Column("m_per_deg_lat", Float, nullable=True),
    Column("note", Text, nullable=True),
    Column("source", Text, nullable=False),
    # The finding's shape (GeoJSON Point, Polygon or MultiPolygon, lng/lat), when the
    # file gives one: a case whose geometry intersects it found it (migration 0018).
    Column("geometry", OptionalJSON, nullable=True),
    Column("file", Text, nullable=True),
    Column("line", Integer, nullable=True),
    Column("imported_at", UTCDateTime, nullable=False),
    UniqueConstraint("ref"),
    Index("ix_survey_findings_found_on", "found_on"),
    Index("ix_survey_findings_unit_code", "unit_code"),
)

# Small facts the engine keeps about itself, by key: e.g. ``calendar.fingerprint``
# (the calendar data the pending timers were last computed from).
system_values = Table(
    "system_values",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)


# -- working a case together (docs/workflow-format.md: countersign, transfer, ack,
# supervision).  Each row is one duty with its own deadline; its timers carry its id
# in ``timers.subject_id``.  ``entered_seq`` is the case revision at which the case
# entered the state the duty belongs to (one visit of that state).

# A countersign party (会签): one role that must sign or refuse in a state visit.
case_parties = Table(
    "case_parties",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Text, ForeignKey("cases.id"), nullable=False),
    Column("state", Text, nullable=False),
    Column("entered_seq", Integer, nullable=False),
    Column("role", Text, nullable=False),  # LEVEL.ROLE
    Column("status", Text, nullable=False),  # pending | signed | refused | cancelled
    Column("deadline_at", UTCDateTime, nullable=True),
    Column("actor", Text, nullable=True),
    Column("acted_at", UTCDateTime, nullable=True),
    Column("note", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("case_id", "entered_seq", "role"),
    Index("ix_case_parties_status_role", "status", "role"),
)

# A transfer (移送/转办) of a case to another unit, pending until accepted or returned.
case_transfers = Table(
    "case_transfers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Text, ForeignKey("cases.id"), nullable=False),
    Column("state", Text, nullable=False),
    Column("from_unit", Text, ForeignKey("units.code"), nullable=False),
    Column("to_unit", Text, ForeignKey("units.code"), nullable=False),
    # A transfer to a department: the LEVEL.ROLE at to_unit that receives it (else NULL).
    Column("to_role", Text, nullable=True),
    Column("reason", Text, nullable=False),
    Column("sent_by", Text, nullable=False),
    Column("sent_at", UTCDateTime, nullable=False),
    Column("deadline_at", UTCDateTime, nullable=True),
    Column("status", Text, nullable=False),  # pending | accepted | returned | cancelled
    Column("answered_by", Text, nullable=True),
    Column("answered_at", UTCDateTime, nullable=True),
    Column("answer_note", Text, nullable=True),
    Index("ix_case_transfers_case_id_status", "case_id", "status"),
    Index("ix_case_transfers_to_unit_status", "to_unit", "status"),
)

# Who took a case in a state visit (签收), or was given it by a leader.
case_assignments = Table(
    "case_assignments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Text, ForeignKey("cases.id"), nullable=False),
    Column("state", Text, nullable=False),
    Column("entered_seq", Integer, nullable=False),
    Column("status", Text, nullable=False),  # offered | acked | assigned | cancelled
    Column("assignee", Text, nullable=True),
    Column("assigned_by", Text, nullable=True),
    Column("offered_at", UTCDateTime, nullable=False),
    Column("deadline_at", UTCDateTime, nullable=True),  # ack within
    Column("acked_at", UTCDateTime, nullable=True),
    UniqueConstraint("case_id", "entered_seq"),
    Index("ix_case_assignments_assignee_status", "assignee", "status"),
)

# A supervision notice (督办) from a higher level, answered by the case moving on
# or by a written reply.
supervisions = Table(
    "supervisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Text, ForeignKey("cases.id"), nullable=False),
    Column("state", Text, nullable=False),
    Column("unit_code", Text, ForeignKey("units.code"), nullable=False),  # responsible
    Column("issued_by", Text, nullable=False),
    Column("issued_at", UTCDateTime, nullable=False),
    Column("note", Text, nullable=False),
    Column("deadline_at", UTCDateTime, nullable=False),
    Column("status", Text, nullable=False),  # open | answered | cancelled
    Column("answer", Text, nullable=True),  # moved | replied
    Column("reply", Text, nullable=True),
    Column("answered_by", Text, nullable=True),
    Column("answered_at", UTCDateTime, nullable=True),
    Index("ix_supervisions_case_id_status", "case_id", "status"),
    Index("ix_supervisions_unit_code_status", "unit_code", "status"),
)

# Who read a notification sent to them (notifications ack): "who was told and who read it".
notification_reads = Table(
    "notification_reads",
    metadata,
    Column("notification_id", Integer, ForeignKey("notifications.id"), nullable=False),
    Column("person_id", Text, ForeignKey("people.id"), nullable=False),
    Column("acked_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("notification_id", "person_id"),
)


# -- sign-in for the pages (engine/people/credentials.py owns both) -----------------
# A person's password: only its argon2 hash; failed sign-ins counted, with a lock-out.
person_credentials = Table(
    "person_credentials",
    metadata,
    Column("person_id", Text, ForeignKey("people.id"), primary_key=True),
    Column("password_hash", Text, nullable=False),
    Column("set_at", UTCDateTime, nullable=False),
    Column("failures", Integer, nullable=False, server_default=text("0")),
    Column("failed_at", UTCDateTime, nullable=True),
    Column("locked_until", UTCDateTime, nullable=True),
)

# A signed-in browser: the SHA-256 of the cookie's random id, its CSRF token, its expiry.
ui_sessions = Table(
    "ui_sessions",
    metadata,
    Column("id_hash", Text, primary_key=True),
    Column("person_id", Text, ForeignKey("people.id"), nullable=False),
    Column("csrf", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_ui_sessions_person_id", "person_id"),
    Index("ix_ui_sessions_expires_at", "expires_at"),
)
