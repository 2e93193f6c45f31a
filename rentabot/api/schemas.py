"""Request and response bodies, as the OpenAPI document declares them.

Resource and lock keys keep rentabot 1.0.0's spelling (``lock-token``,
``max-lock-duration``); keys added since use snake_case. Handlers build response
dictionaries directly (see ``views``); these models describe them for the OpenAPI
document, and the tests check real responses against them.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from rentabot.clock import storable_instant


def reject_control_characters(value: str) -> str:
    """Refuse text with a control character such as a newline, a tab or NUL.

    Labels, reasons and tags are shown on one line of the page and the logs, and
    PostgreSQL cannot store NUL at all.
    """
    for char in value:
        if unicodedata.category(char) == "Cc":
            raise ValueError(
                f"control character {char!r} is not allowed; send one line of printable text"
            )
    return value


def reject_bool(value: Any) -> Any:
    # Pydantic's lax mode would read true as 1; a boolean ttl is a client bug worth reporting.
    if isinstance(value, bool):
        raise ValueError("a number is required, not true or false")
    return value


# The constraint comes before the validator: the other way round, Pydantic writes a
# non-standard "ge" keyword into the JSON schema instead of "minimum".
PositiveSeconds = Annotated[int, Field(ge=1), BeforeValidator(reject_bool)]
Label = Annotated[str, Field(max_length=256), AfterValidator(reject_control_characters)]
# The reason a resource is out of rotation, shown to everyone.
Reason = Annotated[
    str, Field(min_length=1, max_length=256), AfterValidator(reject_control_characters)
]
# An instant with a UTC offset that the stores can keep. They convert it to UTC, where
# an instant late on 9999-12-31 with a negative offset has no equivalent.
StorableDatetime = Annotated[AwareDatetime, AfterValidator(storable_instant)]
# One tag, or several separated by commas, none of them empty or only spaces.
TAG_LIST = r"^[^,]*[^,\s][^,]*(,[^,]*[^,\s][^,]*)*$"


class LockRequest(BaseModel):
    """Optional body of the lock routes."""

    ttl: PositiveSeconds | None = Field(
        None,
        description="Lock length in seconds (default 3600, or the resource's "
        "max-lock-duration when that is shorter).",
        examples=[600],
    )
    locked_by_label: Label | None = Field(
        None,
        description="Label of the lock holder, shown to others: a job URL or a user name.",
        examples=["jenkins/firmware-nightly#4711"],
    )


class ReservationRequest(BaseModel):
    """Body of ``POST /api/v1/reservations``."""

    tags: list[
        Annotated[
            str, Field(min_length=1, pattern=TAG_LIST), AfterValidator(reject_control_characters)
        ]
    ] = Field(
        ...,
        min_length=1,
        description="Every reserved resource carries all of these tags.",
        examples=[["android", "pixel"]],
    )
    quantity: Annotated[int, Field(ge=1), BeforeValidator(reject_bool)] = Field(
        ..., description="How many resources to lock together.", examples=[2]
    )
    max_wait_time: PositiveSeconds | None = Field(
        3600, description="Seconds to wait in the queue before giving up."
    )
    ttl: PositiveSeconds | None = Field(
        3600, description="Length in seconds of the locks taken when fulfilled."
    )
    priority: Annotated[int, BeforeValidator(reject_bool)] = Field(
        0, description="Higher priorities are served first; equal ones first come, first served."
    )
    locked_by_label: Label | None = Field(None, description="Label copied onto the locks.")

    @field_validator("tags")
    @classmethod
    def split_tags(cls, tags: list[str]) -> list[str]:
        """Split entries on commas (tags never contain one) and reject empty tags."""
        parsed: list[str] = []
        for entry in tags:
            parts = [part.strip() for part in entry.split(",")]
            if not all(parts):
                raise ValueError(f"tag {entry!r} is empty or has an empty part")
            parsed.extend(parts)
        return list(dict.fromkeys(parsed))


class WindowBody(BaseModel):
    """A maintenance window: the resource is unavailable from start to end."""

    id: str
    start: str
    end: str
    reason: str
    from_descriptor: bool = Field(description="Declared in the descriptor, deleted there.")


class UnavailableRequest(BaseModel):
    """Body of ``POST /api/v1/resources/{id}/unavailable``."""

    reason: Reason = Field(
        ...,
        description="Why, shown to everyone: 'display cracked', 'firmware upgrade'.",
        examples=["USB hub replaced"],
    )
    until: StorableDatetime | None = Field(
        None, description="When it returns by itself (ISO 8601 with offset); none: by hand."
    )


class WindowRequest(BaseModel):
    """Body of ``POST /api/v1/resources/{id}/maintenance``."""

    start: StorableDatetime
    end: StorableDatetime
    reason: Reason

    @model_validator(mode="after")
    def end_after_start(self) -> WindowRequest:
        if self.end <= self.start:
            raise ValueError(
                f"end {self.end.isoformat()} is not after start {self.start.isoformat()}; "
                "a window must end after it starts"
            )
        return self


class WindowListBody(BaseModel):
    windows: list[WindowBody]


class ResourceBody(BaseModel):
    """A resource. Lock fields are empty or null while it is free."""

    model_config = ConfigDict(populate_by_name=True)

    id: int
    name: str
    description: str
    endpoint: str
    tags: str = Field(description="Comma-separated tags, as the descriptor wrote them.")
    lock_token: str = Field(alias="lock-token", description="Empty while not locked.")
    lock_details: str = Field(alias="lock-details")
    lock_acquired_at: str | None = Field(alias="lock-acquired-at")
    lock_expires_at: str | None = Field(alias="lock-expires-at")
    max_lock_duration: int = Field(alias="max-lock-duration")
    status: str = Field(description="available, locked or reserved.")
    locked_by_label: str | None
    locked_by_ip: str | None
    locked_by_token: str | None = Field(
        description="Name of the API token that took the lock (with authentication on)."
    )
    fencing_token: int | None = Field(
        description="Grows with every lock of this resource; null while not locked."
    )
    reserved_for: str | None = Field(
        description="Pending reservation this free resource is kept for (strict queue policy)."
    )
    unavailable: bool = Field(description="True while the resource is out of rotation.")
    unavailable_reason: str | None
    unavailable_since: str | None
    unavailable_until: str | None = Field(description="When it returns by itself, if known.")
    unavailable_source: str | None = Field(description="admin, health-check or maintenance.")
    maintenance_windows: list[WindowBody] = Field(description="Current and planned windows.")


class ResourceListBody(BaseModel):
    resources: list[ResourceBody]


class ResourceEnvelope(BaseModel):
    resource: ResourceBody


class LockBody(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    message: str
    lock_token: str = Field(alias="lock-token")
    resource: ResourceBody
    locked_at: str = Field(alias="locked-at")
    expires_at: str = Field(alias="expires-at")
    fencing_token: int


class MessageBody(BaseModel):
    message: str


class ExtendBody(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    message: str
    new_expires_at: str = Field(alias="new-expires-at")
    total_lock_duration: int = Field(alias="total-lock-duration")
    fencing_token: int


class ReservationBody(BaseModel):
    reservation_id: str
    status: str
    tags: list[str]
    quantity: int
    ttl: int
    max_wait_time: int
    priority: int
    position_in_queue: int | None
    created_at: str
    expires_at: str
    fulfilled_at: str | None
    claim_expires_at: str | None
    claimed_at: str | None
    resource_ids: list[int]
    lock_tokens: list[str] = Field(
        description="With authentication on, shown only to the reservation's token and admins."
    )
    locked_by_label: str | None
    locked_by_ip: str | None
    locked_by_token: str | None
    reason: str | None


class ReservationListBody(BaseModel):
    reservations: list[ReservationBody]


class ErrorBody(BaseModel):
    """Every error: a message naming the value and the fix, plus fields such as resource_id."""

    model_config = ConfigDict(extra="allow")

    message: str


class HealthBody(BaseModel):
    status: str


class ReadinessBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: str
    store: str


class AuditEntryBody(BaseModel):
    id: int
    at: str
    operation: str = Field(
        description="HTTP method and route of the request, or the name of an automatic event."
    )
    outcome: str = Field(description="ok, or the name of the error.")
    status: int | None = Field(description="HTTP status returned; null for automatic events.")
    resource_id: int | None
    reservation_id: str | None
    token_name: str | None
    role: str = Field(description="anonymous, user, admin, or system for automatic events.")
    ip: str | None
    detail: str | None


class AuditPageBody(BaseModel):
    entries: list[AuditEntryBody]
    total: int
    page: int
    limit: int
