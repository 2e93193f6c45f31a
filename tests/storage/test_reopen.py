"""A SQLite store reopened from its file holds exactly what was committed."""

from __future__ import annotations

from pathlib import Path

from rentabot.clock import ManualClock
from rentabot.domain.models import Holder
from tests.support.lab import Lab, specs

RESOURCES = specs(("phone-1", "android"), ("phone-2", "android"), ("board-1", "arm"))


def snapshot(lab: Lab) -> dict[str, object]:
    listing = lab.run(lab.service.list_resources())
    reservations = lab.run(lab.service.list_reservations())
    return {
        "resources": [
            (r.id, r.name, r.tags_text, r.lock, r.last_fencing_token, r.reserved_for)
            for r in listing.resources
        ],
        "reservations": [
            (r.id, r.status, r.sequence, r.resource_ids, r.lock_tokens, r.expires_at)
            for r in reservations.reservations
        ],
        "positions": reservations.positions,
    }


def test_reopen_keeps_locks_and_queue(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rentabot.db'}"
    clock = ManualClock()
    first = Lab(RESOURCES, store_url=url, clock=clock)
    first.lock(1, label="job-1")
    first.lock(3)
    fulfilled = first.reserve(["android"])
    first.reserve(["arm"], priority=3)
    first.reserve(["arm"])
    first.run(first.service.claim(fulfilled))
    before = snapshot(first)
    first.close()

    second = Lab(RESOURCES, store_url=url, clock=clock)
    after = snapshot(second)
    second.close()

    assert after == before


def test_reopen_continues_counters(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rentabot.db'}"
    clock = ManualClock()
    first = Lab(RESOURCES, store_url=url, clock=clock)
    token = first.lock(1)
    first.unlock(1, token)
    first.reserve(["arm"])
    first.close()

    second = Lab(RESOURCES, store_url=url, clock=clock)
    second.lock(1)
    later = second.reserve(["arm"])
    fencing = second.resource(1).lock.fencing_token  # type: ignore[union-attr]
    sequence = second.reservation(later)[0].sequence
    second.close()

    assert fencing == 2
    assert sequence == 2


def test_reopen_unlocks_what_expired(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rentabot.db'}"
    clock = ManualClock()
    first = Lab(RESOURCES, store_url=url, clock=clock)
    first.lock(1, ttl=30)
    first.lock(2, ttl=3600)
    first.close()

    clock.advance(600)
    second = Lab(RESOURCES, store_url=url, clock=clock)
    second.run(second.service.process_due())

    assert second.resource(1).lock is None
    assert second.resource(1).last_expired_lock is not None
    assert second.resource(2).lock is not None
    second.close()


def test_second_process_rejected(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rentabot.db'}"
    first = Lab(RESOURCES, store_url=url)
    try:
        Lab(RESOURCES, store_url=url)
    except Exception as error:
        assert "another rentabot process" in str(error)
    else:
        raise AssertionError("a second store opened the same SQLite file")
    finally:
        first.close()


def test_holder_survives_reopen(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rentabot.db'}"
    first = Lab(RESOURCES, store_url=url)
    first.run(first.service.lock(1, 60, Holder(label="nightly", ip="10.0.0.7")))
    first.close()

    second = Lab(RESOURCES, store_url=url, clock=first.clock)
    holder = second.resource(1).lock.holder  # type: ignore[union-attr]
    second.close()

    assert holder == Holder(label="nightly", ip="10.0.0.7")
