"""Locks on one resource: expiry to the microsecond, tokens, extension, limits, fencing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from rentabot.domain import errors
from rentabot.domain.models import Holder, ResourceStatus
from tests.support.lab import TICK, Lab


def test_lock_held_until_expiry_instant(lab: Lab) -> None:
    lab.lock(2, ttl=30)
    expiry = lab.resource(2).lock.expires_at  # type: ignore[union-attr]

    lab.clock.set(expiry - TICK)
    assert lab.resource(2).status(lab.clock.now()) is ResourceStatus.LOCKED
    with pytest.raises(errors.ResourceLocked):
        lab.lock(2)

    lab.clock.set(expiry)
    assert lab.resource(2).status(lab.clock.now()) is ResourceStatus.AVAILABLE


def test_lock_free_one_tick_after_expiry(lab: Lab) -> None:
    lab.lock(2, ttl=30)
    expiry = lab.resource(2).lock.expires_at  # type: ignore[union-attr]

    lab.clock.set(expiry + TICK)

    token = lab.lock(2, ttl=30)
    assert lab.resource(2).lock.token == token  # type: ignore[union-attr]


def test_expired_token_cannot_unlock_next_lock(lab: Lab) -> None:
    first = lab.lock(2, ttl=10)
    lab.clock.advance(10)
    second = lab.lock(2, ttl=10)

    with pytest.raises(errors.WrongLockToken):
        lab.unlock(2, first)
    assert lab.resource(2).lock.token == second  # type: ignore[union-attr]


def test_expired_token_cannot_extend(lab: Lab) -> None:
    token = lab.lock(2, ttl=10)
    lab.clock.advance(10)

    with pytest.raises(errors.NotLocked):
        lab.run(lab.service.extend(2, token, 60))


def test_unlock_free_resource_not_locked(lab: Lab) -> None:
    with pytest.raises(errors.NotLocked):
        lab.unlock(2, "anything")


def test_unlock_with_wrong_token(lab: Lab) -> None:
    lab.lock(2)

    with pytest.raises(errors.WrongLockToken):
        lab.unlock(2, "not-the-token")
    assert lab.resource(2).lock is not None


def test_lock_unknown_resource(lab: Lab) -> None:
    with pytest.raises(errors.ResourceNotFound):
        lab.lock(99)


def test_ttl_above_max_lock_duration(lab: Lab) -> None:
    with pytest.raises(errors.TtlTooLong) as raised:
        lab.lock(1, ttl=601)

    assert raised.value.fields["max_lock_duration"] == 600
    assert lab.resource(1).lock is None


def test_default_ttl_shortened_to_max(lab: Lab) -> None:
    lab.lock(1, ttl=None)

    lock = lab.resource(1).lock
    assert lock is not None
    assert (lock.expires_at - lock.acquired_at).total_seconds() == 600


def test_default_ttl_is_one_hour(lab: Lab) -> None:
    lab.lock(2, ttl=None)

    lock = lab.resource(2).lock
    assert lock is not None
    assert (lock.expires_at - lock.acquired_at).total_seconds() == 3600


def test_ttl_above_service_maximum(lab: Lab) -> None:
    with pytest.raises(errors.ValueOutOfRange) as raised:
        lab.lock(2, ttl=lab.limits.max_ttl + 1)

    assert raised.value.fields["field"] == "ttl"


def test_extend_renews_from_now(lab: Lab) -> None:
    token = lab.lock(2, ttl=60)
    lab.clock.advance(50)

    resource, total = lab.run(lab.service.extend(2, token, 60))

    assert resource.lock is not None
    assert resource.lock.expires_at == lab.clock.now() + timedelta(seconds=60)
    assert total == 110


def test_extend_never_shortens(lab: Lab) -> None:
    token = lab.lock(2, ttl=600)
    expiry = lab.resource(2).lock.expires_at  # type: ignore[union-attr]
    lab.clock.advance(10)

    resource, total = lab.run(lab.service.extend(2, token, 5))

    assert resource.lock is not None
    assert resource.lock.expires_at == expiry
    assert total == 600


def test_extend_past_max_rejected(lab: Lab) -> None:
    token = lab.lock(1, ttl=500)
    expiry = lab.resource(1).lock.expires_at  # type: ignore[union-attr]
    lab.clock.advance(200)

    with pytest.raises(errors.TtlTooLong):
        lab.run(lab.service.extend(1, token, 450))
    assert lab.resource(1).lock.expires_at == expiry  # type: ignore[union-attr]


def test_fencing_token_grows_per_lock(lab: Lab) -> None:
    seen = []
    for _ in range(3):
        token = lab.lock(2)
        seen.append(lab.resource(2).lock.fencing_token)  # type: ignore[union-attr]
        lab.unlock(2, token)

    assert seen == [1, 2, 3]


def test_fencing_token_survives_expiry(lab: Lab) -> None:
    lab.lock(2, ttl=5)
    lab.clock.advance(5)
    lab.lock(2, ttl=5)

    assert lab.resource(2).lock.fencing_token == 2  # type: ignore[union-attr]


def test_holder_label_cleared_on_unlock(lab: Lab) -> None:
    token = lab.lock(2, label="nightly#12")
    assert lab.resource(2).lock.holder.label == "nightly#12"  # type: ignore[union-attr]

    lab.unlock(2, token)

    assert lab.resource(2).lock is None


@pytest.mark.parametrize(
    ("resource_id", "name", "tags", "expected"),
    [
        (4, "phone-2", ["android"], 4),
        (None, "phone-3", ["arm"], 3),
        (None, None, ["arm", "board"], 4),
    ],
    ids=["id-beats-name", "name-beats-tag", "tags"],
)
def test_lock_by_criteria_precedence(
    lab: Lab, resource_id: int | None, name: str | None, tags: list[str], expected: int
) -> None:
    resource, _ = lab.run(lab.service.lock_matching(resource_id, name, tags, 60, Holder()))

    assert resource.id == expected


def test_lock_by_criteria_needs_one(lab: Lab) -> None:
    with pytest.raises(errors.MissingCriterion):
        lab.run(lab.service.lock_matching(None, None, None, 60, Holder()))


def test_tag_lock_takes_first_free(lab: Lab) -> None:
    lab.lock(1)
    lab.lock(2)

    resource, _ = lab.run(lab.service.lock_matching(None, None, ["android"], 60, Holder()))

    assert resource.id == 3


def test_tag_lock_needs_all_tags(lab: Lab) -> None:
    with pytest.raises(errors.NoResourceMatchesTags):
        lab.run(lab.service.lock_matching(None, None, ["android", "arm"], 60, Holder()))


def test_tag_lock_none_free(lab: Lab) -> None:
    lab.lock(4)
    lab.lock(5)

    with pytest.raises(errors.NoFreeResource):
        lab.run(lab.service.lock_matching(None, None, ["arm"], 60, Holder()))


def test_tag_lock_skips_too_short_max(lab: Lab) -> None:
    resource, _ = lab.run(lab.service.lock_matching(None, None, ["android"], 900, Holder()))

    assert resource.id == 2


def test_tag_lock_ttl_fits_nowhere(lab: Lab) -> None:
    lab.lock(2)
    lab.lock(3)

    with pytest.raises(errors.TtlTooLong):
        lab.run(lab.service.lock_matching(None, None, ["android"], 900, Holder()))
