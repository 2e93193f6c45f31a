"""Health checks against real TCP and HTTP servers on 127.0.0.1.

The checks probe every 0.1 s and give up after 2 failures in a row, so each change
shows within a second; the tests poll the API for it, with a bound.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rentabot.clock import ManualClock
from rentabot.config.settings import Settings
from tests.support.servers import InProcessServer, in_process_server
from tests.support.targets import HttpTarget, TcpTarget, wait_for


@pytest.fixture
def tcp_target() -> Iterator[TcpTarget]:
    target = TcpTarget().start()
    yield target
    target.stop()


@pytest.fixture
def http_target() -> Iterator[HttpTarget]:
    target = HttpTarget().start()
    yield target
    target.stop()


@pytest.fixture
def checked(
    tmp_path: Path, tcp_target: TcpTarget, http_target: HttpTarget
) -> Iterator[InProcessServer]:
    descriptor = tmp_path / "lab.yaml"
    descriptor.write_text(
        "board-tcp:\n"
        "  tags: board\n"
        f"  health_check: {{type: tcp, target: '127.0.0.1:{tcp_target.port}', interval: 0.1, timeout: 0.5, failures: 2}}\n"
        "board-http:\n"
        "  tags: board\n"
        f"  health_check: {{type: http, target: '{http_target.url}', expect_status: 200, interval: 0.1, timeout: 0.5, failures: 2}}\n"
        "board-plain:\n"
        "  tags: board\n"
    )
    with in_process_server(Settings(descriptor=descriptor), clock=ManualClock()) as server:
        yield server


def resource(server: InProcessServer, resource_id: int) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(f"{server.base_url}/api/v1/resources/{resource_id}").json()[
        "resource"
    ]
    return body


def source_of(server: InProcessServer, resource_id: int) -> str | None:
    value: str | None = resource(server, resource_id)["unavailable_source"]
    return value


def test_tcp_down_takes_resource_out(checked: InProcessServer, tcp_target: TcpTarget) -> None:
    assert wait_for(lambda: resource(checked, 1)["status"] == "available")

    tcp_target.stop()

    assert wait_for(lambda: source_of(checked, 1) == "health-check")
    body = resource(checked, 1)
    assert body["status"] == "unavailable"
    assert f"127.0.0.1:{tcp_target.port}" in body["unavailable_reason"]
    assert "2 times in a row" in body["unavailable_reason"]


def test_tcp_back_brings_resource_in(checked: InProcessServer, tcp_target: TcpTarget) -> None:
    tcp_target.stop()
    assert wait_for(lambda: source_of(checked, 1) == "health-check")

    tcp_target.start()

    assert wait_for(lambda: resource(checked, 1)["status"] == "available")


def test_http_bad_status_takes_out(checked: InProcessServer, http_target: HttpTarget) -> None:
    http_target.status = 503

    assert wait_for(lambda: source_of(checked, 2) == "health-check")
    assert "status 503, expected 200" in resource(checked, 2)["unavailable_reason"]

    http_target.status = 200

    assert wait_for(lambda: resource(checked, 2)["status"] == "available")


def test_admin_reason_survives_passing_check(checked: InProcessServer) -> None:
    marked = httpx.post(
        f"{checked.base_url}/api/v1/resources/1/unavailable", json={"reason": "sent for repair"}
    )
    assert marked.status_code == 200

    # Ten probe rounds pass in the meantime.
    time.sleep(1.0)

    body = resource(checked, 1)
    assert body["unavailable_reason"] == "sent for repair"
    assert body["unavailable_source"] == "admin"


def test_admin_reason_survives_failing_check(
    checked: InProcessServer, tcp_target: TcpTarget
) -> None:
    httpx.post(
        f"{checked.base_url}/api/v1/resources/1/unavailable", json={"reason": "sent for repair"}
    )

    tcp_target.stop()
    time.sleep(1.0)

    assert resource(checked, 1)["unavailable_reason"] == "sent for repair"


def test_hanging_target_blocks_no_request(
    checked: InProcessServer, http_target: HttpTarget
) -> None:
    http_target.hang.set()

    started = time.monotonic()
    for _ in range(20):
        assert httpx.get(f"{checked.base_url}/api/v1/resources", timeout=5).status_code == 200
    elapsed = time.monotonic() - started

    assert wait_for(lambda: source_of(checked, 2) == "health-check")
    assert "no answer within 0.5 s" in resource(checked, 2)["unavailable_reason"]
    # Twenty reads while a probe hangs: none waited for the probe's 0.5 s timeout.
    assert elapsed < 5


def test_check_outcomes_audited(checked: InProcessServer, tcp_target: TcpTarget) -> None:
    tcp_target.stop()
    assert wait_for(lambda: source_of(checked, 1) == "health-check")

    entries = httpx.get(f"{checked.base_url}/api/v1/audit", params={"resource_id": 1}).json()[
        "entries"
    ]

    assert entries[0]["operation"] == "health-check"
    assert entries[0]["role"] == "system"
