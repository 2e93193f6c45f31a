"""Mutual exclusion under load: 32 clients share 8 resources over real HTTP for 20 s.

Each client locks by id or by tag, extends, unlocks (sometimes with a wrong or stale
token), lets locks expire, and reserves, claims and releases groups of resources.
TTLs of 1-3 s make locks also end by expiry during the run. Afterwards
``tests.support.holds`` rebuilds every hold from acknowledged responses only and checks
that no two of them overlap and that fencing tokens grow in order of acquisition.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from tests.support.holds import (
    Hold,
    describe_pairs,
    find_fencing_violations,
    find_overlaps,
)
from tests.support.lab_clients import run_clients, write_pool_descriptor
from tests.support.servers import ServerProcess, start_server_process

logger = logging.getLogger(__name__)

RUN_SECONDS = 20.0


def server_log_tail(server: ServerProcess, lines: int = 40) -> str:
    return "\n".join(server.log().splitlines()[-lines:])


# The checker on hand-made holds, so the acceptance run below cannot pass vacuously.


def make_hold(resource_id: int, start: float, expiry: float, fencing: int) -> Hold:
    return Hold(resource_id, f"owner-{fencing}", f"token-{fencing}", start, expiry, fencing)


def test_checker_reports_overlap() -> None:
    first = make_hold(1, start=100.0, expiry=103.0, fencing=1)
    second = make_hold(1, start=102.0, expiry=104.0, fencing=2)
    assert find_overlaps([first, second]) == [(first, second)]


def test_checker_accepts_handover_at_expiry() -> None:
    first = make_hold(1, start=100.0, expiry=103.0, fencing=1)
    second = make_hold(1, start=103.0, expiry=104.0, fencing=2)
    assert find_overlaps([first, second]) == []


def test_checker_ends_hold_at_unlock() -> None:
    first = make_hold(1, start=100.0, expiry=103.0, fencing=1)
    first.released_at = 101.0
    second = make_hold(1, start=101.5, expiry=104.0, fencing=2)
    assert find_overlaps([first, second]) == []


def test_checker_separates_resources() -> None:
    first = make_hold(1, start=100.0, expiry=103.0, fencing=1)
    second = make_hold(2, start=101.0, expiry=104.0, fencing=1)
    assert find_overlaps([first, second]) == []


def test_checker_reports_fencing_decrease() -> None:
    first = make_hold(1, start=100.0, expiry=101.0, fencing=5)
    second = make_hold(1, start=102.0, expiry=103.0, fencing=4)
    assert find_fencing_violations([first, second]) == [(first, second)]


def test_checker_reports_repeated_fencing() -> None:
    first = make_hold(1, start=100.0, expiry=101.0, fencing=5)
    second = make_hold(1, start=102.0, expiry=103.0, fencing=5)
    assert find_fencing_violations([first, second]) == [(first, second)]


# The acceptance run.


@pytest.mark.slow
@pytest.mark.parametrize("store", ["memory", "sqlite"], ids=["memory", "sqlite"])
def test_holds_never_overlap(store: str, tmp_path: Path) -> None:
    descriptor = write_pool_descriptor(tmp_path)
    env = {}
    if store == "sqlite":
        env["RENTABOT_PERSIST"] = f"sqlite:///{tmp_path / 'rentabot.db'}"

    server = start_server_process(tmp_path / "server.log", descriptor=descriptor, env=env)
    try:
        tally = asyncio.run(run_clients([server.base_url], RUN_SECONDS))
        log_tail = server_log_tail(server)
    finally:
        server.stop()
    summary = tally.summary()
    logger.info("%s store: %s", store, summary)

    assert not tally.transport_errors, (
        f"{len(tally.transport_errors)} requests got no response, first: "
        f"{tally.transport_errors[:3]}\n{summary}\nserver log:\n{log_tail}"
    )
    assert not tally.server_errors, (
        f"{len(tally.server_errors)} responses were 5xx, first: {tally.server_errors[:3]}\n"
        f"{summary}\nserver log:\n{log_tail}"
    )

    # The run exercised contention, so the checks below are not vacuous.
    assert tally.count("lock", 200) > 0, summary
    assert tally.count("lock", 403) > 0, summary
    assert tally.count("unlock", 200) > 0, summary
    assert any(hold.ended_by_expiry for hold in tally.holds), summary
    assert tally.reservations_claimed > 0, summary
    assert tally.count("release", 200) > 0, summary
    assert (
        tally.count_all("unlock with wrong token") + tally.count_all("extend with wrong token") > 0
    ), summary
    assert (
        tally.count_all("unlock with stale token") + tally.count_all("extend with stale token") > 0
    ), summary

    assert not tally.accepted_bad_tokens, (
        f"wrong or stale lock tokens were accepted: {tally.accepted_bad_tokens[:5]}\n{summary}"
    )
    assert not tally.shortened_extensions, (
        f"extend moved an expiry earlier: {tally.shortened_extensions[:5]}\n{summary}"
    )

    overlaps = find_overlaps(tally.holds)
    assert not overlaps, (
        f"{len(overlaps)} pairs of clients held the same resource at once:\n"
        f"{describe_pairs(overlaps)}\n{summary}"
    )
    fencing_violations = find_fencing_violations(tally.holds)
    assert not fencing_violations, (
        f"{len(fencing_violations)} fencing tokens did not grow with acquisition order:\n"
        f"{describe_pairs(fencing_violations)}\n{summary}"
    )
