"""Check recorded lock holds for overlaps and for fencing tokens out of order.

A test builds each :class:`Hold` only from acknowledged (2xx) responses and from the
moment it sent an unlock or release. The interval of a hold is the span in which
its client certainly held the resource, so every overlap reported is a real breach
of mutual exclusion, never one that a lost or late response could explain.

Times are POSIX timestamps in seconds. Server instants and client ``time.time()``
readings can be compared because the tests run the server on the same machine.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


def parse_instant(text: str) -> float:
    """Return the POSIX timestamp of an ISO 8601 instant with a UTC offset."""
    instant = datetime.fromisoformat(text)
    if instant.tzinfo is None:
        raise ValueError(f"instant {text!r} has no UTC offset; the API must send one")
    return instant.timestamp()


def format_instant(timestamp: float) -> str:
    """Return a POSIX timestamp as ISO 8601 UTC time with microseconds, for messages."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="microseconds")


def instant_after(text: str, seconds: int) -> float:
    """Return the timestamp ``seconds`` after the instant ``text``, computed as the server does."""
    return (datetime.fromisoformat(text) + timedelta(seconds=seconds)).timestamp()


@dataclass(eq=False)
class Hold:
    """One lock as its client learned it from acknowledged responses.

    ``start`` is the server's ``locked-at`` (or the reservation's ``fulfilled_at``).
    ``expiry`` is the last acknowledged expiry. ``released_at`` is the client time
    just before it sent the unlock or release, whatever the response was.
    ``claim_deadline`` is the end of the claim window of a reservation that the client
    did not claim, because the server then releases the lock at that instant.
    """

    resource_id: int
    owner: str
    token: str
    start: float
    expiry: float
    fencing_token: int | None = None
    released_at: float | None = None
    release_acknowledged: bool = False
    claim_deadline: float | None = None
    # True once a request on this lock got no response, because the lock may then outlast
    # ``expiry``.
    outcome_unknown: bool = False

    @property
    def end(self) -> float:
        """Return the instant up to which the client certainly held the resource."""
        candidates = [self.expiry]
        if self.released_at is not None:
            candidates.append(self.released_at)
        if self.claim_deadline is not None:
            candidates.append(self.claim_deadline)
        return min(candidates)

    @property
    def ended_by_expiry(self) -> bool:
        """Tell whether the lock ran to its expiry before the client gave it back."""
        return self.released_at is None or self.released_at >= self.expiry

    def certainly_ended(self, now: float) -> bool:
        """Tell whether the lock has ended for sure at client time ``now``.

        A lock ends for sure once an unlock or release of it was acknowledged, or once
        ``now`` passed its expiry and every request on it got a response (an extend whose
        response was lost may have moved the expiry later).
        """
        if self.release_acknowledged:
            return True
        return not self.outcome_unknown and now > self.expiry

    def describe(self) -> str:
        released = "never" if self.released_at is None else format_instant(self.released_at)
        return (
            f"{self.owner} held resource {self.resource_id} from {format_instant(self.start)} "
            f"until {format_instant(self.end)} (expiry {format_instant(self.expiry)}, release "
            f"sent {released}, fencing_token {self.fencing_token})"
        )


def holds_by_resource(holds: Iterable[Hold]) -> dict[int, list[Hold]]:
    grouped: dict[int, list[Hold]] = defaultdict(list)
    for hold in holds:
        grouped[hold.resource_id].append(hold)
    return grouped


def find_overlaps(holds: Iterable[Hold]) -> list[tuple[Hold, Hold]]:
    """Return pairs of holds of one resource whose certain intervals intersect.

    Intervals are half-open, ``[start, end)``, because a lock is held while
    ``now < expires-at`` and a new lock may start at that very instant. For each hold
    that starts inside an earlier interval, the pair with the earlier hold that
    reaches furthest is reported, so any overlap yields at least one pair.
    """
    overlaps: list[tuple[Hold, Hold]] = []
    for resource_holds in holds_by_resource(holds).values():
        certain = [hold for hold in resource_holds if hold.end > hold.start]
        certain.sort(key=lambda hold: hold.start)
        furthest: Hold | None = None
        for hold in certain:
            if furthest is not None and hold.start < furthest.end:
                overlaps.append((furthest, hold))
            if furthest is None or hold.end > furthest.end:
                furthest = hold
    return overlaps


def find_fencing_violations(holds: Iterable[Hold]) -> list[tuple[Hold, Hold]]:
    """Return pairs of holds of one resource whose fencing tokens do not increase.

    Holds are taken in order of acquisition (``start``). A later hold must carry a
    strictly greater fencing token, and two holds never share one. Holds whose
    fencing token the client never learned are left out.
    """
    violations: list[tuple[Hold, Hold]] = []
    for resource_holds in holds_by_resource(holds).values():
        known = [hold for hold in resource_holds if hold.fencing_token is not None]
        known.sort(key=lambda hold: (hold.start, hold.fencing_token))
        for earlier, later in itertools.pairwise(known):
            assert earlier.fencing_token is not None and later.fencing_token is not None
            if later.fencing_token <= earlier.fencing_token:
                violations.append((earlier, later))
    return violations


def describe_pairs(pairs: list[tuple[Hold, Hold]], limit: int = 5) -> str:
    """Return the first ``limit`` pairs as text, one pair per line, for an assertion message."""
    lines = [f"{first.describe()}\n    and {second.describe()}" for first, second in pairs[:limit]]
    if len(pairs) > limit:
        lines.append(f"... and {len(pairs) - limit} more")
    return "\n".join(lines)


def total_held_seconds(holds: Iterable[Hold]) -> float:
    """Return the total certain holding time of ``holds`` in seconds."""
    return math.fsum(max(0.0, hold.end - hold.start) for hold in holds)
