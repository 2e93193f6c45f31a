"""Unavailability and maintenance windows, on a manual clock, in every store kind."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from rentabot.domain import errors
from rentabot.domain.commands import ResourceSpec, WindowSpec
from rentabot.domain.models import Holder, ResourceStatus, UnavailabilitySource
from tests.support.lab import TICK, Lab, specs

HOUR = timedelta(hours=1)


@pytest.fixture
def lab(store_url: str | None) -> Iterator[Lab]:
    """Two phones tagged android and one board tagged arm."""
    built = Lab(
        specs(("phone-1", "android"), ("phone-2", "android"), ("board-1", "arm")),
        store_url=store_url,
    )
    yield built
    built.close()


def unavailable(
    lab: Lab, resource_id: int, until: timedelta | None = None, reason: str = "broken screen"
) -> None:
    instant = lab.clock.now() + until if until is not None else None
    lab.run(lab.service.mark_unavailable(resource_id, reason, instant))


def window(
    lab: Lab, resource_id: int, start: timedelta, end: timedelta, reason: str = "firmware"
) -> str:
    now = lab.clock.now()
    created = lab.run(lab.service.add_window(resource_id, now + start, now + end, reason))
    return created.id


def status(lab: Lab, resource_id: int) -> ResourceStatus:
    return lab.resource(resource_id).status(lab.clock.now())


def test_lock_refused_while_unavailable(lab: Lab) -> None:
    unavailable(lab, 1)

    with pytest.raises(errors.ResourceUnavailable) as raised:
        lab.lock(1)

    assert "broken screen" in raised.value.message
    assert status(lab, 1) is ResourceStatus.UNAVAILABLE


def test_tag_lock_skips_unavailable(lab: Lab) -> None:
    unavailable(lab, 1)

    resource, _ = lab.run(lab.service.lock_matching(None, None, ["android"], 60, Holder()))

    assert resource.id == 2


def test_tag_lock_all_unavailable_409(lab: Lab) -> None:
    unavailable(lab, 3)

    with pytest.raises(errors.ResourceUnavailable):
        lab.run(lab.service.lock_matching(None, None, ["arm"], 60, Holder()))


def test_reservation_skips_unavailable(lab: Lab) -> None:
    unavailable(lab, 1)

    reservation_id = lab.reserve(["android"])

    assert lab.reservation(reservation_id)[0].resource_ids == [2]


def test_unavailable_not_kept_for_queue(lab: Lab) -> None:
    lab.lock(3)
    reservation_id = lab.reserve(["arm"])
    unavailable(lab, 3)

    assert lab.resource(3).reserved_for is None
    assert lab.status(reservation_id) == "pending"


def test_held_lock_runs_to_expiry(lab: Lab) -> None:
    token = lab.lock(1, ttl=60)
    unavailable(lab, 1)

    assert lab.resource(1).held_lock(lab.clock.now()) is not None
    with pytest.raises(errors.ResourceUnavailable):
        lab.run(lab.service.extend(1, token, 30))
    lab.clock.advance(60)
    assert lab.resource(1).lock is None
    assert status(lab, 1) is ResourceStatus.UNAVAILABLE


def test_held_lock_may_unlock(lab: Lab) -> None:
    token = lab.lock(1, ttl=60)
    unavailable(lab, 1)

    lab.unlock(1, token)

    assert lab.resource(1).lock is None


def test_returns_by_itself_at_until(lab: Lab) -> None:
    unavailable(lab, 3, until=HOUR)
    back = lab.clock.now() + HOUR

    lab.clock.set(back - TICK)
    assert status(lab, 3) is ResourceStatus.UNAVAILABLE
    lab.clock.set(back)
    assert status(lab, 3) is ResourceStatus.AVAILABLE
    assert lab.resource(3).unavailability is None


def test_return_fulfils_waiting_reservation(lab: Lab) -> None:
    unavailable(lab, 3, until=HOUR)
    back = lab.clock.now() + HOUR
    reservation_id = lab.reserve(["arm"], max_wait_time=7200)
    assert lab.status(reservation_id) == "pending"

    lab.clock.set(back)
    lab.run(lab.service.process_due())

    reservation, _ = lab.reservation(reservation_id)
    assert reservation.status.value == "fulfilled"
    assert reservation.fulfilled_at == back


def test_marked_available_fulfils_waiting(lab: Lab) -> None:
    unavailable(lab, 3)
    reservation_id = lab.reserve(["arm"])

    lab.run(lab.service.mark_available(3))

    assert lab.status(reservation_id) == "fulfilled"


def test_until_in_past_rejected(lab: Lab) -> None:
    with pytest.raises(errors.InstantInPast):
        lab.run(lab.service.mark_unavailable(1, "x", lab.clock.now() - TICK))
    assert lab.resource(1).unavailability is None


def test_health_check_keeps_admin_reason(lab: Lab) -> None:
    unavailable(lab, 1, reason="sent for repair")

    lab.run(lab.service.mark_unavailable(1, "tcp failed", None, UnavailabilitySource.HEALTH_CHECK))
    lab.run(lab.service.mark_available(1, UnavailabilitySource.HEALTH_CHECK))

    away = lab.resource(1).unavailability
    assert away is not None
    assert away.reason == "sent for repair"
    assert away.source is UnavailabilitySource.ADMIN


def test_admin_clears_health_check_mark(lab: Lab) -> None:
    lab.run(lab.service.mark_unavailable(1, "tcp failed", None, UnavailabilitySource.HEALTH_CHECK))

    lab.run(lab.service.mark_available(1))

    assert lab.resource(1).unavailability is None


def test_lock_into_window_refused(lab: Lab) -> None:
    window_id = window(lab, 1, start=HOUR, end=2 * HOUR)

    with pytest.raises(errors.WindowConflict) as raised:
        lab.lock(1, ttl=3601)

    assert raised.value.fields["window_id"] == window_id
    assert lab.resource(1).lock is None


def test_lock_ending_at_window_allowed(lab: Lab) -> None:
    window(lab, 1, start=HOUR, end=2 * HOUR)

    lab.lock(1, ttl=3600)

    assert lab.resource(1).lock is not None


def test_extension_into_window_refused(lab: Lab) -> None:
    token = lab.lock(1, ttl=600)
    window(lab, 1, start=HOUR, end=2 * HOUR)

    with pytest.raises(errors.WindowConflict):
        lab.run(lab.service.extend(1, token, 3601))


def test_tag_lock_avoids_window(lab: Lab) -> None:
    window(lab, 1, start=HOUR, end=2 * HOUR)

    resource, _ = lab.run(lab.service.lock_matching(None, None, ["android"], 7200, Holder()))

    assert resource.id == 2


def test_reservation_avoids_window(lab: Lab) -> None:
    window(lab, 1, start=HOUR, end=2 * HOUR)

    reservation_id = lab.reserve(["android"], ttl=7200)

    assert lab.reservation(reservation_id)[0].resource_ids == [2]


def test_claim_into_new_window_refused(lab: Lab) -> None:
    reservation_id = lab.reserve(["arm"], ttl=7200)
    window(lab, 3, start=HOUR, end=2 * HOUR)

    with pytest.raises(errors.WindowConflict):
        lab.run(lab.service.claim(reservation_id))


def test_window_turns_unavailable_and_back(lab: Lab) -> None:
    window(lab, 3, start=HOUR, end=2 * HOUR)
    start = lab.clock.now() + HOUR

    lab.clock.set(start - TICK)
    assert status(lab, 3) is ResourceStatus.AVAILABLE
    lab.clock.set(start)
    lab.run(lab.service.process_due())
    assert status(lab, 3) is ResourceStatus.UNAVAILABLE
    assert lab.resource(3).unavailable_at(start).reason == "firmware"  # type: ignore[union-attr]
    lab.clock.set(start + HOUR)
    lab.run(lab.service.process_due())
    assert status(lab, 3) is ResourceStatus.AVAILABLE
    assert lab.resource(3).windows == ()


def test_window_end_fulfils_waiting(lab: Lab) -> None:
    window(lab, 3, start=timedelta(0), end=HOUR)
    reservation_id = lab.reserve(["arm"], max_wait_time=7200)
    assert lab.status(reservation_id) == "pending"

    lab.clock.advance(3600)
    lab.run(lab.service.process_due())

    assert lab.status(reservation_id) == "fulfilled"


def test_overlapping_window_rejected(lab: Lab) -> None:
    existing = window(lab, 1, start=HOUR, end=2 * HOUR)

    with pytest.raises(errors.WindowOverlap) as raised:
        window(lab, 1, start=90 * timedelta(minutes=1), end=3 * HOUR)

    assert raised.value.fields["window_id"] == existing
    assert len(lab.resource(1).windows) == 1


def test_window_in_past_rejected(lab: Lab) -> None:
    with pytest.raises(errors.InstantInPast):
        window(lab, 1, start=-2 * HOUR, end=-HOUR)


def test_deleted_window_ends_now(lab: Lab) -> None:
    window_id = window(lab, 3, start=timedelta(0), end=HOUR)
    reservation_id = lab.reserve(["arm"])

    lab.run(lab.service.remove_window(3, window_id))

    assert lab.status(reservation_id) == "fulfilled"


def test_delete_unknown_window(lab: Lab) -> None:
    with pytest.raises(errors.WindowNotFound):
        lab.run(lab.service.remove_window(1, "mw_missing"))


def test_return_at_wait_end_in_time(lab: Lab) -> None:
    unavailable(lab, 3, until=HOUR)

    reservation_id = lab.reserve(["arm"], max_wait_time=3600)
    lab.clock.advance(3600)
    lab.run(lab.service.process_due())

    assert lab.status(reservation_id) == "fulfilled"


def test_hopeless_reservation_ends_saying_why(lab: Lab) -> None:
    unavailable(lab, 3, until=3 * HOUR, reason="rack moved")

    reservation_id = lab.reserve(["arm"], max_wait_time=3600)

    with pytest.raises(errors.ReservationNotFound) as raised:
        lab.reservation(reservation_id)
    assert raised.value.fields["status"] == "expired"
    assert "rack moved" in raised.value.fields["reason"]


def test_indefinite_unavailability_still_waits(lab: Lab) -> None:
    unavailable(lab, 3)

    reservation_id = lab.reserve(["arm"], max_wait_time=3600)

    assert lab.status(reservation_id) == "pending"


def test_descriptor_windows_synced(lab: Lab) -> None:
    now = lab.clock.now()
    planned = WindowSpec(now + HOUR, now + 2 * HOUR, "battery swap")
    declared = [
        ResourceSpec("phone-1", tags_text="android", windows=(planned,)),
        *specs(("phone-2", "android"), ("board-1", "arm")),
    ]

    lab.run(lab.service.sync_resources(declared))
    window_id = lab.resource(1).windows[0].id
    with pytest.raises(errors.WindowFromDescriptor):
        lab.run(lab.service.remove_window(1, window_id))
    lab.run(
        lab.service.sync_resources(
            specs(("phone-1", "android"), ("phone-2", "android"), ("board-1", "arm"))
        )
    )

    assert lab.resource(1).windows == ()


# The in-memory store keeps nothing across a restart, so only the persistent kinds run.
@pytest.mark.parametrize(
    "store_url", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
def test_unavailability_survives_restart(store_url: str | None) -> None:
    first = Lab(specs(("phone-1", "android")), store_url=store_url)
    now = first.clock.now()
    first.run(first.service.mark_unavailable(1, "cable loose", now + HOUR))
    first.run(first.service.add_window(1, now + 2 * HOUR, now + 3 * HOUR, "firmware"))
    before = first.resource(1)
    first.close()

    second = Lab(specs(("phone-1", "android")), store_url=store_url, clock=first.clock)
    after = second.resource(1)
    second.close()

    assert after.unavailability == before.unavailability
    assert after.windows == before.windows
    assert after.unavailability is not None
    assert after.unavailability.until == now + HOUR
