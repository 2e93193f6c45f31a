"""Tables of the SQL store. Alembic migrations create them; this module describes them.

A resource row carries its current lock inline, so the hot path reads and writes one
row. ``resource_tags`` indexes tags for matching, ``resource_names`` remembers the id
of every name ever seen, ``counters`` hands out queue sequence numbers, and ``events``
keeps committed events with increasing ids for replay.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator

from rentabot.storage.columns import ID_LENGTH, NAME_LENGTH, TAG_LENGTH

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """A UTC instant: timestamptz on PostgreSQL, naive UTC text on SQLite.

    SQLite stores SQLAlchemy datetimes as fixed-width text, so comparisons in SQL
    still order instants correctly once every value is in UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("rentabot stores only timezone-aware datetimes")
        instant: datetime = value.astimezone(UTC)
        return instant.replace(tzinfo=None) if dialect.name == "sqlite" else instant

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


resources = Table(
    "resources",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("name", String(NAME_LENGTH), nullable=False, unique=True),
    Column("description", Text, nullable=False, default=""),
    Column("endpoint", Text, nullable=False, default=""),
    Column("tags_text", Text, nullable=False, default=""),
    Column("max_lock_duration", Integer, nullable=False),
    Column("retired", Boolean, nullable=False, default=False),
    Column("last_fencing_token", BigInteger, nullable=False, default=0),
    Column("reserved_for", String(64), nullable=True, index=True),
    # The current lock; all NULL while free.
    Column("lock_token", String(64), nullable=True),
    Column("lock_acquired_at", UTCDateTime, nullable=True),
    Column("lock_expires_at", UTCDateTime, nullable=True, index=True),
    Column("lock_fencing_token", BigInteger, nullable=True),
    Column("lock_label", Text, nullable=True),
    Column("lock_ip", String(64), nullable=True),
    Column("lock_token_name", String(256), nullable=True),
    Column("lock_reservation_id", String(64), nullable=True),
    # The last lock that ended by expiry.
    Column("expired_acquired_at", UTCDateTime, nullable=True),
    Column("expired_at", UTCDateTime, nullable=True),
    Column("expired_fencing_token", BigInteger, nullable=True),
    Column("expired_label", Text, nullable=True),
    Column("expired_ip", String(64), nullable=True),
    Column("expired_token_name", String(256), nullable=True),
    # Out of rotation, by an admin or a health check; NULL while in rotation.
    Column("unavailable_reason", Text, nullable=True),
    Column("unavailable_since", UTCDateTime, nullable=True),
    Column("unavailable_until", UTCDateTime, nullable=True),
    Column("unavailable_source", String(16), nullable=True),
    # JSON list of maintenance windows; a few per resource at most.
    Column("maintenance_windows", Text, nullable=False, server_default="[]"),
    # The next instant this resource changes by itself (Resource.next_deadline()).
    Column("next_deadline", UTCDateTime, nullable=True, index=True),
)

resource_tags = Table(
    "resource_tags",
    metadata,
    Column(
        "resource_id",
        Integer,
        ForeignKey("resources.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("tag", String(TAG_LENGTH), primary_key=True),
    Index("ix_resource_tags_tag_resource_id", "tag", "resource_id"),
)

resource_names = Table(
    "resource_names",
    metadata,
    Column("name", String(NAME_LENGTH), primary_key=True),
    Column("id", Integer, nullable=False, unique=True),
)

reservations = Table(
    "reservations",
    metadata,
    Column("id", String(ID_LENGTH), primary_key=True),
    Column("tags", Text, nullable=False),  # JSON list
    Column("quantity", Integer, nullable=False),
    Column("ttl", Integer, nullable=False),
    Column("max_wait_time", Integer, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("sequence", BigInteger, nullable=False, unique=True),
    Column("status", String(16), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("label", Text, nullable=True),
    Column("ip", String(64), nullable=True),
    Column("token_name", String(256), nullable=True),
    Column("fulfilled_at", UTCDateTime, nullable=True),
    Column("claim_expires_at", UTCDateTime, nullable=True),
    Column("claimed_at", UTCDateTime, nullable=True),
    Column("ended_at", UTCDateTime, nullable=True, index=True),
    Column("reason", Text, nullable=True),
    Column("resource_ids", Text, nullable=False, default="[]"),  # JSON list
    Column("lock_tokens", Text, nullable=False, default="[]"),  # JSON list
    # The next instant the timer must look at: end of the wait, or of the claim window.
    Column("deadline", UTCDateTime, nullable=True, index=True),
)

counters = Table(
    "counters",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

events = Table(
    "events",
    metadata,
    # BIGINT on PostgreSQL; SQLite needs exactly INTEGER for an auto-incremented rowid.
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("name", String(64), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("resource_id", Integer, nullable=True),
    Column("reservation_id", String(64), nullable=True),
    Column("data", Text, nullable=False),  # JSON object
)

audit = Table(
    "audit",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("operation", String(128), nullable=False, index=True),
    Column("outcome", String(64), nullable=False),
    Column("status", Integer, nullable=True),
    Column("resource_id", Integer, nullable=True, index=True),
    Column("reservation_id", String(64), nullable=True, index=True),
    Column("token_name", String(256), nullable=True, index=True),
    Column("role", String(16), nullable=False),
    Column("ip", String(64), nullable=True),
    Column("detail", Text, nullable=True),
)
