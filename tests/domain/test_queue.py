"""The reservation queue: fulfilment in the releasing request, order, policies, windows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from rentabot.domain import errors
from rentabot.domain.audit import AuditQuery
from rentabot.domain.models import Holder, QueuePolicy, ResourceStatus
from rentabot.domain.ports import Transaction
from tests.support.lab import TICK, Lab, specs

POOL = (("phone-1", "android"), ("phone-2", "android"), ("board-1", "arm"))


@pytest.fixture
def pool(store_url: str | None) -> Iterator[Lab]:
    """Two android phones and one arm board, strict policy, 60 s claim window."""
    built = Lab(specs(*POOL), store_url=store_url)
    yield built
    built.close()


@pytest.fixture
def backfill_pool(store_url: str | None) -> Iterator[Lab]:
    built = Lab(specs(*POOL), policy=QueuePolicy.BACKFILL, store_url=store_url)
    yield built
    built.close()


def test_reservation_fulfilled_when_free(pool: Lab) -> None:
    reservation_id = pool.reserve(["android"], quantity=2)

    reservation, position = pool.reservation(reservation_id)

    assert reservation.status.value == "fulfilled"
    assert reservation.resource_ids == [1, 2]
    assert position is None


def test_reservation_answer_says_pending(pool: Lab) -> None:
    reservation, position = pool.run(pool.service.reserve(["android"], 1, 600, 3600, 0, Holder()))

    assert reservation.status.value == "pending"
    assert position == 1


def test_unlock_fulfils_waiting_reservation(pool: Lab) -> None:
    token = pool.lock(3)
    reservation_id = pool.reserve(["arm"])
    assert pool.status(reservation_id) == "pending"

    # The deadline timer is not running here: only the unlock request can fulfil it.
    pool.unlock(3, token)

    reservation, _ = pool.reservation(reservation_id)
    assert reservation.status.value == "fulfilled"
    assert reservation.resource_ids == [3]
    assert reservation.fulfilled_at == pool.clock.now()


def test_fulfilment_commits_with_unlock(pool: Lab) -> None:
    token = pool.lock(3)
    reservation_id = pool.reserve(["arm"])
    transactions: list[list[str]] = []
    write = pool.store.write

    async def recording_write(operation: Callable[[Transaction], Any]) -> Any:
        def run(tx: Transaction) -> Any:
            result = operation(tx)
            transactions.append([event.name for event in tx.emitted()])
            return result

        return await write(run)

    pool.store.write = recording_write  # type: ignore[method-assign]
    pool.unlock(3, token)

    assert len(transactions) == 1
    assert transactions[0][0] == "resource.unlocked"
    assert "reservation.fulfilled" in transactions[0]
    assert pool.status(reservation_id) == "fulfilled"


def test_lock_expiry_fulfils_at_instant(pool: Lab) -> None:
    pool.lock(3, ttl=30)
    expiry = pool.resource(3).lock.expires_at  # type: ignore[union-attr]
    reservation_id = pool.reserve(["arm"])

    pool.clock.set(expiry)
    pool.run(pool.service.process_due())

    reservation, _ = pool.reservation(reservation_id)
    assert reservation.status.value == "fulfilled"
    assert reservation.fulfilled_at == expiry


def test_lapsed_claim_serves_wait_ending_then(pool: Lab) -> None:
    """A claim window lapses at the instant another reservation's wait ends.

    The resources freed by the lapse can still serve that reservation, as a lock that
    ends when a wait ends can. Reservation ids are random and used to be what ordered
    the two deadlines, so the test runs several rounds to cover both orders.
    """
    for _ in range(8):
        unclaimed = pool.reserve(["android"], quantity=2)
        waiting = pool.reserve(["android"], quantity=2, max_wait_time=60)
        reservation, _ = pool.reservation(unclaimed)
        assert reservation.claim_expires_at == pool.reservation(waiting)[0].expires_at

        pool.clock.set(reservation.claim_expires_at)  # type: ignore[arg-type]
        pool.run(pool.service.process_due())

        assert pool.status(waiting) == "fulfilled"
        with pytest.raises(errors.ReservationNotFound) as raised:
            pool.reservation(unclaimed)
        assert raised.value.fields["status"] == "expired"
        pool.run(pool.service.release(waiting))


def test_return_recorded_before_lock(pool: Lab) -> None:
    """A lock ends as another resource's unavailability ends; a reservation takes both.

    phone-2 must be recorded as available again before the reservation locks it.
    """
    pool.lock(1, ttl=30)
    expiry = pool.resource(1).lock.expires_at  # type: ignore[union-attr]
    pool.run(pool.service.mark_unavailable(2, "firmware update", expiry))
    reservation_id = pool.reserve(["android"], quantity=2)

    pool.clock.set(expiry)
    pool.run(pool.service.process_due())

    assert pool.status(reservation_id) == "fulfilled"
    names = [e.name for e in pool.events() if e.resource_id == 2 and e.name != "resource.added"]
    assert names == ["resource.unavailable", "resource.available", "resource.locked"]
    assert pool.resource(2).unavailability is None


def test_simultaneous_expiries_both_recorded(pool: Lab) -> None:
    """Two locks end at one instant, and a reservation takes both resources then.

    Each old lock must get its own expiry event and audit entry before the reservation
    locks its resource again.
    """
    pool.lock(1, ttl=30)
    pool.lock(2, ttl=30)
    expiry = pool.resource(2).lock.expires_at  # type: ignore[union-attr]
    reservation_id = pool.reserve(["android"], quantity=2)

    pool.clock.set(expiry)
    pool.run(pool.service.process_due())

    assert pool.status(reservation_id) == "fulfilled"
    for resource_id in (1, 2):
        locked, expired = "resource.locked", "lock.expired"
        names = [
            e.name
            for e in pool.events()
            if e.resource_id == resource_id and e.name in (locked, expired)
        ]
        assert names == [locked, expired, locked], f"resource {resource_id}: {names}"
        records = pool.run(
            pool.service.audit_log(AuditQuery(resource_id=resource_id, operation=expired))
        )[0]
        assert [record.at for record in records] == [expiry]


def test_strict_younger_waits_behind_older(pool: Lab) -> None:
    token = pool.lock(1)
    older = pool.reserve(["android"], quantity=2)
    younger = pool.reserve(["android"], quantity=1)

    assert pool.status(older) == "pending"
    assert pool.status(younger) == "pending"
    assert pool.resource(2).reserved_for == older
    assert pool.resource(2).status(pool.clock.now()) is ResourceStatus.RESERVED

    pool.unlock(1, token)

    assert pool.status(older) == "fulfilled"
    assert pool.status(younger) == "pending"


def test_strict_direct_lock_cannot_take_owed(pool: Lab) -> None:
    pool.lock(1)
    pool.reserve(["android"], quantity=2)

    with pytest.raises(errors.ResourceReserved):
        pool.lock(2)
    with pytest.raises(errors.NoFreeResource):
        pool.run(pool.service.lock_matching(None, None, ["android"], 60, Holder()))


def test_strict_other_tags_unaffected(pool: Lab) -> None:
    pool.lock(1)
    pool.reserve(["android"], quantity=2)

    pool.lock(3)

    assert pool.resource(3).lock is not None


def test_backfill_younger_goes_first(backfill_pool: Lab) -> None:
    backfill_pool.lock(1)
    older = backfill_pool.reserve(["android"], quantity=2)
    younger = backfill_pool.reserve(["android"], quantity=1)

    assert backfill_pool.status(older) == "pending"
    assert backfill_pool.status(younger) == "fulfilled"


def test_backfill_direct_lock_allowed(backfill_pool: Lab) -> None:
    backfill_pool.lock(1)
    backfill_pool.reserve(["android"], quantity=2)

    backfill_pool.lock(2)

    assert backfill_pool.resource(2).lock is not None


def test_priority_served_before_age(pool: Lab) -> None:
    token = pool.lock(3)
    low = pool.reserve(["arm"], priority=0)
    high = pool.reserve(["arm"], priority=5)

    assert pool.reservation(high)[1] == 1
    assert pool.reservation(low)[1] == 2

    pool.unlock(3, token)

    assert pool.status(high) == "fulfilled"
    assert pool.status(low) == "pending"


def test_equal_priority_first_come_first_served(pool: Lab) -> None:
    token = pool.lock(3)
    first = pool.reserve(["arm"])
    second = pool.reserve(["arm"])

    pool.unlock(3, token)

    assert pool.status(first) == "fulfilled"
    assert pool.status(second) == "pending"


def test_claim_returns_tokens(pool: Lab) -> None:
    reservation_id = pool.reserve(["android"], quantity=2)

    claimed = pool.run(pool.service.claim(reservation_id))

    assert claimed.status.value == "claimed"
    tokens = [pool.resource(i).lock.token for i in claimed.resource_ids]  # type: ignore[union-attr]
    assert claimed.lock_tokens == tokens


def test_claim_while_pending(pool: Lab) -> None:
    pool.lock(3)
    reservation_id = pool.reserve(["arm"])

    with pytest.raises(errors.ReservationNotFulfilled) as raised:
        pool.run(pool.service.claim(reservation_id))
    assert raised.value.fields["position_in_queue"] == 1


def test_claim_twice(pool: Lab) -> None:
    reservation_id = pool.reserve(["arm"])
    pool.run(pool.service.claim(reservation_id))

    with pytest.raises(errors.ReservationNotClaimable):
        pool.run(pool.service.claim(reservation_id))


def test_claim_window_ends_at_instant(pool: Lab) -> None:
    reservation_id = pool.reserve(["arm"])
    reservation, _ = pool.reservation(reservation_id)
    assert reservation.claim_expires_at == pool.clock.now() + timedelta(seconds=60)

    pool.clock.set(reservation.claim_expires_at - TICK)
    assert pool.status(reservation_id) == "fulfilled"

    pool.clock.set(reservation.claim_expires_at)
    with pytest.raises(errors.ClaimWindowPassed):
        pool.run(pool.service.claim(reservation_id))


def test_claim_window_expiry_answers_404(pool: Lab) -> None:
    reservation_id = pool.reserve(["arm"])
    pool.clock.advance(60)

    with pytest.raises(errors.ReservationNotFound) as raised:
        pool.reservation(reservation_id)

    assert raised.value.fields["status"] == "expired"
    assert "claim window" in raised.value.fields["reason"]


def test_claim_window_expiry_releases(pool: Lab) -> None:
    reservation_id = pool.reserve(["arm"])
    waiting = pool.reserve(["arm"])
    pool.clock.advance(60)
    pool.run(pool.service.process_due())

    assert pool.status(waiting) == "fulfilled"
    with pytest.raises(errors.ReservationNotFound):
        pool.reservation(reservation_id)


def test_wait_expiry_answers_404(pool: Lab) -> None:
    pool.lock(3)
    reservation_id = pool.reserve(["arm"], max_wait_time=30)

    pool.clock.advance(30)

    with pytest.raises(errors.ReservationNotFound) as raised:
        pool.reservation(reservation_id)
    assert raised.value.fields["status"] == "expired"
    assert "max_wait_time=30" in raised.value.fields["reason"]


def test_wait_expiry_frees_earmarks(pool: Lab) -> None:
    pool.lock(1)
    big = pool.reserve(["android"], quantity=2, max_wait_time=30)
    small = pool.reserve(["android"], quantity=1)
    assert pool.status(small) == "pending"

    pool.clock.advance(30)
    pool.run(pool.service.process_due())

    assert pool.status(small) == "fulfilled"
    with pytest.raises(errors.ReservationNotFound):
        pool.reservation(big)


def test_lock_expiry_before_wait_end(pool: Lab) -> None:
    pool.lock(3, ttl=20)
    reservation_id = pool.reserve(["arm"], max_wait_time=30)

    # Both deadlines passed while nothing ran: they apply in time order.
    pool.clock.advance(45)
    pool.run(pool.service.process_due())

    assert pool.status(reservation_id) == "fulfilled"


def test_cancel_pending(pool: Lab) -> None:
    pool.lock(3)
    reservation_id = pool.reserve(["arm"])

    pool.run(pool.service.cancel(reservation_id))

    with pytest.raises(errors.ReservationNotFound) as raised:
        pool.reservation(reservation_id)
    assert raised.value.fields["status"] == "cancelled"


def test_cancel_fulfilled_rejected(pool: Lab) -> None:
    reservation_id = pool.reserve(["arm"])

    with pytest.raises(errors.ReservationNotCancellable):
        pool.run(pool.service.cancel(reservation_id))


def test_release_frees_and_hands_over(pool: Lab) -> None:
    holder = pool.reserve(["arm"])
    pool.run(pool.service.claim(holder))
    waiting = pool.reserve(["arm"])

    released = pool.run(pool.service.release(holder))

    assert released.status.value == "released"
    assert pool.status(waiting) == "fulfilled"


def test_claimed_reservation_ends_with_locks(pool: Lab) -> None:
    reservation_id = pool.reserve(["arm"])
    claimed = pool.run(pool.service.claim(reservation_id))

    pool.unlock(3, claimed.lock_tokens[0])

    listing = pool.run(pool.service.list_reservations())
    assert reservation_id not in [r.id for r in listing.reservations]
    assert pool.status(reservation_id) == "claimed"


def test_reserve_unknown_tags(pool: Lab) -> None:
    with pytest.raises(errors.NoResourceMatchesTags):
        pool.reserve(["gpu"])


def test_reserve_more_than_exist(pool: Lab) -> None:
    with pytest.raises(errors.NeverSatisfiable) as raised:
        pool.reserve(["android"], quantity=3)
    assert raised.value.fields["compatible_count"] == 2


@pytest.mark.parametrize(
    ("field", "arguments"),
    [
        ("quantity", {"quantity": 1001}),
        ("max_wait_time", {"max_wait_time": 10**9}),
        ("priority", {"priority": 101}),
        ("priority", {"priority": -101}),
    ],
    ids=["quantity", "max-wait-time", "priority-high", "priority-low"],
)
def test_reserve_numbers_checked(pool: Lab, field: str, arguments: dict[str, int]) -> None:
    with pytest.raises(errors.ValueOutOfRange) as raised:
        pool.reserve(["arm"], **arguments)
    assert raised.value.fields["field"] == field


def test_restart_catch_up_stamps_now(pool: Lab) -> None:
    pool.lock(3, ttl=30)
    reservation_id = pool.reserve(["arm"], max_wait_time=3600)

    # The service was down for ten minutes; the lock ended while it was.
    pool.clock.advance(600)
    pool.run(pool.service.process_due())

    reservation, _ = pool.reservation(reservation_id)
    assert reservation.status.value == "fulfilled"
    assert reservation.fulfilled_at == pool.clock.now()
    assert reservation.claim_expires_at == pool.clock.now() + timedelta(seconds=60)
