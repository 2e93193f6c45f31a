"""Configured limits and policies that the rules apply to every request."""

from __future__ import annotations

from dataclasses import dataclass

from rentabot.domain.models import QueuePolicy

DAY = 86400


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on request numbers and the queue's behaviour, all durations in seconds.

    ``default_ttl`` is rentabot 1.0.0's default lock length; a resource whose
    max-lock-duration is shorter gets a lock of its maximum instead of a 400.
    """

    default_ttl: int = 3600
    default_max_lock_duration: int = DAY
    max_ttl: int = 30 * DAY
    default_max_wait_time: int = 3600
    max_wait_time: int = 7 * DAY
    max_quantity: int = 1000
    min_priority: int = -100
    max_priority: int = 100
    claim_window: int = 60
    queue_policy: QueuePolicy = QueuePolicy.STRICT
    # Ended reservations stay readable this long, so a late GET receives a 404 with the reason.
    ended_reservation_retention: int = DAY
    max_label_length: int = 256
