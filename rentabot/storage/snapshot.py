"""A portable snapshot of a store: resources, locks, reservations and counters.

``rentabot backup`` writes one as JSON and ``rentabot restore`` loads it into any store
kind, so state moves between memory, SQLite and PostgreSQL keeping ids, lock tokens,
expiry instants and queue order. The format has a name and a version; a newer version
is rejected rather than half-read, and so is a snapshot whose parts contradict each
other (two resources with one id, a lock token held twice), before any store sees it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from rentabot.clock import storable_instant
from rentabot.domain.audit import AuditEntry
from rentabot.domain.models import (
    EndedLock,
    Holder,
    Lock,
    MaintenanceWindow,
    Reservation,
    ReservationStatus,
    Resource,
    Unavailability,
    UnavailabilitySource,
    parse_tags,
)
from rentabot.storage.columns import (
    ID_LENGTH,
    MAX_BIG_INTEGER,
    MAX_INTEGER,
    NAME_LENGTH,
    TAG_LENGTH,
)

FORMAT = "rentabot-snapshot"
VERSION = 1

# Exceptions that reading a malformed value raises, OverflowError for int(1e400) among them.
PARSE_ERRORS = (AttributeError, KeyError, TypeError, ValueError, OverflowError)

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


class SnapshotError(ValueError):
    """The file is not a snapshot this version can read; the message names the problem."""


class DamagedEntry(ValueError):
    """A part of a snapshot that cannot be read. The message names the part and the error."""

    def __init__(self, where: str, error: Exception) -> None:
        super().__init__(f"{where}: {type(error).__name__}: {error}")


@dataclass(slots=True)
class Snapshot:
    resources: list[Resource] = field(default_factory=list)
    reservations: list[Reservation] = field(default_factory=list)
    # Every name ever seen and its id, so a resource added back later gets its id again.
    names: dict[str, int] = field(default_factory=dict)
    # The last resource id and queue sequence number handed out.
    last_resource_id: int = 0
    last_sequence: int = 0
    audit: list[AuditEntry] = field(default_factory=list)

    def to_json(self, taken_at: datetime) -> str:
        document = {
            "format": FORMAT,
            "version": VERSION,
            "taken_at": taken_at.isoformat(),
            "resources": [resource_to_dict(r) for r in self.resources],
            "reservations": [reservation_to_dict(r) for r in self.reservations],
            "names": self.names,
            "last_resource_id": self.last_resource_id,
            "last_sequence": self.last_sequence,
            "audit": [entry.to_dict() for entry in self.audit],
        }
        return json.dumps(document, indent=1, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str, source: str = "snapshot") -> Snapshot:
        try:
            document = json.loads(text)
        except ValueError as error:
            raise SnapshotError(
                f"{source}: not JSON ({error}); pass a file written by rentabot backup"
            ) from error
        if not isinstance(document, dict) or document.get("format") != FORMAT:
            raise SnapshotError(f"{source}: not a rentabot snapshot (no format {FORMAT!r})")
        if document.get("version") != VERSION:
            raise SnapshotError(
                f"{source}: snapshot version {document.get('version')!r} is not supported; "
                f"this rentabot reads version {VERSION}"
            )
        try:
            snapshot = cls(
                resources=read_list(document["resources"], "resources", resource_from_dict),
                reservations=read_list(
                    document["reservations"], "reservations", reservation_from_dict
                ),
                names=read_entry("names", read_names, document["names"]),
                last_resource_id=read_entry("last_resource_id", int, document["last_resource_id"]),
                last_sequence=read_entry("last_sequence", int, document["last_sequence"]),
                audit=read_list(document.get("audit", []), "audit", audit_from_dict),
            )
        except PARSE_ERRORS as error:
            problem = str(error) if isinstance(error, DamagedEntry) else describe(error)
            raise SnapshotError(
                f"{source}: damaged snapshot ({problem}); fix that part, or restore an "
                "unedited file written by rentabot backup"
            ) from error
        check_consistent(snapshot, source)
        return snapshot

    def complete(self) -> Snapshot:
        """Fill in names and counters that a hand-made snapshot may leave out."""
        for resource in self.resources:
            self.names.setdefault(resource.name, resource.id)
        ids = [*self.names.values(), self.last_resource_id]
        self.last_resource_id = max(ids)
        sequences = [r.sequence for r in self.reservations]
        self.last_sequence = max([*sequences, self.last_sequence])
        return self


def describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def read_entry(where: str, parse: Callable[[Any], T], data: Any) -> T:
    """Return ``parse(data)``, or raise DamagedEntry naming ``where`` if it is malformed."""
    try:
        return parse(data)
    except PARSE_ERRORS as error:
        raise DamagedEntry(where, error) from error


def read_list(items: Any, section: str, parse: Callable[[Any], T]) -> list[T]:
    return [read_entry(f"{section}[{index}]", parse, item) for index, item in enumerate(items)]


def read_names(data: Any) -> dict[str, int]:
    return {str(name): int(i) for name, i in data.items()}


def check_consistent(snapshot: Snapshot, source: str) -> None:
    """Raise SnapshotError if parts of ``snapshot`` contradict each other.

    Each rule guards a constraint of the SQL schema or an assumption of the rules, so a
    hand-edited file is rejected before any store is touched, whatever its kind.
    """
    checks = (
        size_problem,
        resource_problem,
        name_problem,
        reservation_problem,
        lock_problem,
        audit_problem,
    )
    for check in checks:
        problem = check(snapshot)
        if problem is not None:
            raise SnapshotError(f"{source}: {problem}")


def repeated(values: Iterable[K]) -> K | None:
    """Return the first value seen twice, or None."""
    seen: set[K] = set()
    for value in values:
        if value in seen:
            return value
        seen.add(value)
    return None


def size_problem(snapshot: Snapshot) -> str | None:
    """Return a message naming a number or text the SQL columns cannot hold, or None."""
    for where, value, low, high in sized_numbers(snapshot):
        if not low <= value <= high:
            return f"{where} is {value}, outside {low}..{high}; give a value in that range"
    for where, text, length in sized_texts(snapshot):
        if len(text) > length:
            return (
                f"{where} has {len(text)} characters, more than the {length} a store "
                "can keep; shorten it"
            )
    return None


def sized_numbers(snapshot: Snapshot) -> Iterator[tuple[str, int, int, int]]:
    """Yield (where, value, lowest, highest) for each number the stores keep."""
    yield "last_resource_id", snapshot.last_resource_id, 0, MAX_INTEGER
    yield "last_sequence", snapshot.last_sequence, 0, MAX_BIG_INTEGER
    for name, resource_id in snapshot.names.items():
        yield f"names[{name!r}]", resource_id, 1, MAX_INTEGER
    for index, resource in enumerate(snapshot.resources):
        where = f"resources[{index}]"
        yield f"{where}.id", resource.id, 1, MAX_INTEGER
        yield f"{where}.max_lock_duration", resource.max_lock_duration, 1, MAX_INTEGER
        yield f"{where}.last_fencing_token", resource.last_fencing_token, 0, MAX_BIG_INTEGER
    for index, reservation in enumerate(snapshot.reservations):
        where = f"reservations[{index}]"
        yield f"{where}.sequence", reservation.sequence, 0, MAX_BIG_INTEGER
        yield f"{where}.quantity", reservation.quantity, 1, MAX_INTEGER
        yield f"{where}.ttl", reservation.ttl, 1, MAX_INTEGER
        yield f"{where}.max_wait_time", reservation.max_wait_time, 1, MAX_INTEGER
        yield f"{where}.priority", reservation.priority, -MAX_INTEGER, MAX_INTEGER
        for position, resource_id in enumerate(reservation.resource_ids):
            yield f"{where}.resource_ids[{position}]", resource_id, 1, MAX_INTEGER


def sized_texts(snapshot: Snapshot) -> Iterator[tuple[str, str, int]]:
    """Yield (where, text, longest) for each name, tag and id the stores keep."""
    for name in snapshot.names:
        # Only the start of a long text is shown: the message gives its length.
        yield f"the names entry {name[:40]!r}", name, NAME_LENGTH
    for index, resource in enumerate(snapshot.resources):
        yield f"resources[{index}].name", resource.name, NAME_LENGTH
        for tag in sorted(resource.tags):
            yield f"resources[{index}] tag {tag[:40]!r}", tag, TAG_LENGTH
    for index, reservation in enumerate(snapshot.reservations):
        yield f"reservations[{index}].id", reservation.id, ID_LENGTH


def resource_problem(snapshot: Snapshot) -> str | None:
    twice = repeated(r.id for r in snapshot.resources)
    if twice is not None:
        names = [r.name for r in snapshot.resources if r.id == twice]
        return (
            f"two resources have id {twice} ({names[0]!r} and {names[1]!r}); "
            "give each resource its own id"
        )

    name = repeated(r.name for r in snapshot.resources)
    if name is not None:
        ids = [r.id for r in snapshot.resources if r.name == name]
        return (
            f"two resources are named {name!r} (ids {ids[0]} and {ids[1]}); "
            "rename or remove one of them"
        )
    return None


def name_problem(snapshot: Snapshot) -> str | None:
    names_by_id = {r.id: r.name for r in snapshot.resources}
    for name, resource_id in snapshot.names.items():
        owner = names_by_id.get(resource_id, name)
        if owner != name:
            return (
                f"names maps {name!r} to id {resource_id}, which is resource {owner!r}; "
                f"give {name!r} an id no other name has, or remove the entry"
            )

    for resource in snapshot.resources:
        known = snapshot.names.get(resource.name, resource.id)
        if known != resource.id:
            return (
                f"names maps {resource.name!r} to id {known}, but resource {resource.id} "
                f"is named {resource.name!r}; set the entry to {resource.id}"
            )

    twice = repeated(snapshot.names.values())
    if twice is not None:
        shared = sorted(name for name, i in snapshot.names.items() if i == twice)
        return (
            f"names maps both {shared[0]!r} and {shared[1]!r} to id {twice}; "
            "give each name its own id"
        )
    return None


def reservation_problem(snapshot: Snapshot) -> str | None:
    twice = repeated(r.id for r in snapshot.reservations)
    if twice is not None:
        return f"two reservations have id {twice!r}; give each its own id or remove one"

    sequence = repeated(r.sequence for r in snapshot.reservations)
    if sequence is not None:
        ids = [r.id for r in snapshot.reservations if r.sequence == sequence]
        return (
            f"reservations {ids[0]!r} and {ids[1]!r} have the same sequence {sequence}; "
            "give each its own place in the queue"
        )

    for reservation in snapshot.reservations:
        if len(reservation.resource_ids) != len(reservation.lock_tokens):
            return (
                f"reservation {reservation.id!r} lists {len(reservation.resource_ids)} "
                f"resource_ids but {len(reservation.lock_tokens)} lock_tokens; "
                "give one lock token per resource"
            )
    return None


def lock_problem(snapshot: Snapshot) -> str | None:
    locked = [r for r in snapshot.resources if r.lock is not None]
    token = repeated(r.lock.token for r in locked if r.lock is not None)
    if token is not None:
        # The message leaves the token out, because the token is the secret that unlocks.
        ids = [r.id for r in locked if r.lock is not None and r.lock.token == token]
        return (
            f"resources {ids[0]} and {ids[1]} are locked with the same lock token; "
            "give each lock its own token"
        )

    for resource in locked:
        assert resource.lock is not None
        if resource.lock.fencing_token > resource.last_fencing_token:
            return (
                f"resource {resource.id} is locked with fencing token "
                f"{resource.lock.fencing_token}, above its last_fencing_token "
                f"{resource.last_fencing_token}, so the next lock would reuse a token; "
                "raise last_fencing_token to at least the lock's"
            )
    return None


def audit_problem(snapshot: Snapshot) -> str | None:
    twice = repeated(entry.id for entry in snapshot.audit if entry.id)
    if twice is not None:
        return f"two audit entries have id {twice}; give each its own id"
    return None


def instant(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def parse_instant(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no UTC offset")
    return storable_instant(parsed)


def required_instant(value: str) -> datetime:
    parsed = parse_instant(value)
    assert parsed is not None
    return parsed


def holder_to_dict(holder: Holder) -> dict[str, Any]:
    return {"label": holder.label, "ip": holder.ip, "token_name": holder.token_name}


def holder_from_dict(data: dict[str, Any] | None) -> Holder:
    data = data or {}
    return Holder(data.get("label"), data.get("ip"), data.get("token_name"))


def resource_to_dict(resource: Resource) -> dict[str, Any]:
    lock = resource.lock
    ended = resource.last_expired_lock
    return {
        "id": resource.id,
        "name": resource.name,
        "description": resource.description,
        "endpoint": resource.endpoint,
        "tags": resource.tags_text,
        "max_lock_duration": resource.max_lock_duration,
        "retired": resource.retired,
        "last_fencing_token": resource.last_fencing_token,
        "reserved_for": resource.reserved_for,
        "lock": None
        if lock is None
        else {
            "token": lock.token,
            "acquired_at": instant(lock.acquired_at),
            "expires_at": instant(lock.expires_at),
            "fencing_token": lock.fencing_token,
            "holder": holder_to_dict(lock.holder),
            "reservation_id": lock.reservation_id,
        },
        "unavailable": None
        if resource.unavailability is None
        else {
            "reason": resource.unavailability.reason,
            "since": instant(resource.unavailability.since),
            "until": instant(resource.unavailability.until),
            "source": resource.unavailability.source.value,
        },
        "maintenance_windows": [
            {
                "id": w.id,
                "start": instant(w.start),
                "end": instant(w.end),
                "reason": w.reason,
                "from_descriptor": w.from_descriptor,
                "started": w.started,
            }
            for w in resource.windows
        ],
        "last_expired_lock": None
        if ended is None
        else {
            "acquired_at": instant(ended.acquired_at),
            "expired_at": instant(ended.expired_at),
            "fencing_token": ended.fencing_token,
            "holder": holder_to_dict(ended.holder),
        },
    }


def resource_from_dict(data: dict[str, Any]) -> Resource:
    lock_data = data.get("lock")
    ended_data = data.get("last_expired_lock")
    away = data.get("unavailable")
    return Resource(
        id=int(data["id"]),
        name=str(data["name"]),
        description=str(data.get("description", "")),
        endpoint=str(data.get("endpoint", "")),
        tags_text=str(data.get("tags", "")),
        tags=parse_tags(str(data.get("tags", ""))),
        max_lock_duration=int(data["max_lock_duration"]),
        retired=bool(data.get("retired", False)),
        last_fencing_token=int(data.get("last_fencing_token", 0)),
        reserved_for=data.get("reserved_for"),
        lock=None
        if lock_data is None
        else Lock(
            token=str(lock_data["token"]),
            acquired_at=required_instant(lock_data["acquired_at"]),
            expires_at=required_instant(lock_data["expires_at"]),
            fencing_token=int(lock_data["fencing_token"]),
            holder=holder_from_dict(lock_data.get("holder")),
            reservation_id=lock_data.get("reservation_id"),
        ),
        last_expired_lock=None
        if ended_data is None
        else EndedLock(
            acquired_at=required_instant(ended_data["acquired_at"]),
            expired_at=required_instant(ended_data["expired_at"]),
            fencing_token=int(ended_data["fencing_token"]),
            holder=holder_from_dict(ended_data.get("holder")),
        ),
        unavailability=None
        if away is None
        else Unavailability(
            reason=str(away["reason"]),
            since=required_instant(away["since"]),
            until=parse_instant(away.get("until")),
            source=UnavailabilitySource(away.get("source", "admin")),
        ),
        windows=tuple(
            MaintenanceWindow(
                id=str(w["id"]),
                start=required_instant(w["start"]),
                end=required_instant(w["end"]),
                reason=str(w["reason"]),
                from_descriptor=bool(w.get("from_descriptor", False)),
                started=bool(w.get("started", False)),
            )
            for w in data.get("maintenance_windows", [])
        ),
    )


def reservation_to_dict(reservation: Reservation) -> dict[str, Any]:
    return {
        "id": reservation.id,
        "tags": list(reservation.tags),
        "quantity": reservation.quantity,
        "ttl": reservation.ttl,
        "max_wait_time": reservation.max_wait_time,
        "priority": reservation.priority,
        "sequence": reservation.sequence,
        "status": reservation.status.value,
        "created_at": instant(reservation.created_at),
        "expires_at": instant(reservation.expires_at),
        "holder": holder_to_dict(reservation.holder),
        "fulfilled_at": instant(reservation.fulfilled_at),
        "claim_expires_at": instant(reservation.claim_expires_at),
        "claimed_at": instant(reservation.claimed_at),
        "ended_at": instant(reservation.ended_at),
        "reason": reservation.reason,
        "resource_ids": list(reservation.resource_ids),
        "lock_tokens": list(reservation.lock_tokens),
    }


def reservation_from_dict(data: dict[str, Any]) -> Reservation:
    return Reservation(
        id=str(data["id"]),
        tags=tuple(str(tag) for tag in data["tags"]),
        quantity=int(data["quantity"]),
        ttl=int(data["ttl"]),
        max_wait_time=int(data["max_wait_time"]),
        priority=int(data["priority"]),
        sequence=int(data["sequence"]),
        status=ReservationStatus(data["status"]),
        created_at=required_instant(data["created_at"]),
        expires_at=required_instant(data["expires_at"]),
        holder=holder_from_dict(data.get("holder")),
        fulfilled_at=parse_instant(data.get("fulfilled_at")),
        claim_expires_at=parse_instant(data.get("claim_expires_at")),
        claimed_at=parse_instant(data.get("claimed_at")),
        ended_at=parse_instant(data.get("ended_at")),
        reason=data.get("reason"),
        resource_ids=[int(i) for i in data.get("resource_ids", [])],
        lock_tokens=[str(t) for t in data.get("lock_tokens", [])],
    )


def audit_from_dict(data: dict[str, Any]) -> AuditEntry:
    return AuditEntry(
        at=required_instant(data["at"]),
        operation=str(data["operation"]),
        outcome=str(data["outcome"]),
        status=None if data.get("status") is None else int(data["status"]),
        resource_id=None if data.get("resource_id") is None else int(data["resource_id"]),
        reservation_id=data.get("reservation_id"),
        token_name=data.get("token_name"),
        role=str(data.get("role", "anonymous")),
        ip=data.get("ip"),
        detail=data.get("detail"),
        id=int(data.get("id", 0)),
    )
