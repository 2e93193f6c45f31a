"""While PostgreSQL is unreachable, the service answers 503 quickly and recovers by itself."""

from __future__ import annotations

import time
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from rentabot.clock import ManualClock, utc_now
from rentabot.config.settings import Settings
from tests.support.postgres import fresh_schema
from tests.support.servers import LAB_DESCRIPTOR, in_process_server
from tests.support.tcp_proxy import tcp_proxy

pytestmark = pytest.mark.postgres

# Long enough for a refused connection, short enough to call anything slower a hang.
REQUEST_TIMEOUT = 15.0


def through_proxy(url: str, port: int) -> str:
    parts = urlsplit(url)
    user = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))


def wait_for_status(client: httpx.Client, path: str, status: int, within: float = 20.0) -> int:
    deadline = time.monotonic() + within
    seen = -1
    while time.monotonic() < deadline:
        seen = client.get(path).status_code
        if seen == status:
            return seen
        time.sleep(0.2)
    return seen


def test_outage_gives_503_then_recovers() -> None:
    with fresh_schema() as url:
        target = urlsplit(url)
        with tcp_proxy(target.hostname or "127.0.0.1", target.port or 5432) as proxy:
            settings = Settings(descriptor=LAB_DESCRIPTOR, persist=through_proxy(url, proxy.port))
            with in_process_server(settings, clock=ManualClock(start=utc_now())) as server:
                client = httpx.Client(base_url=server.base_url, timeout=REQUEST_TIMEOUT)
                token = client.post("/api/v1/resources/1/lock").json()["lock-token"]

                proxy.cut()
                readiness = wait_for_status(client, "/readiness", 503)
                lock = client.post("/api/v1/resources/2/lock")
                listing = client.get("/api/v1/resources")
                reserve = client.post(
                    "/api/v1/reservations", json={"tags": ["android"], "quantity": 1}
                )

                proxy.restore()
                recovered = wait_for_status(client, "/readiness", 200)
                still_locked = client.get("/api/v1/resources/1").json()["resource"]["lock-token"]
                after = client.post("/api/v1/resources/2/lock")
                client.close()

    assert readiness == 503
    assert lock.status_code == 503
    assert "unavailable" in lock.json()["message"]
    assert listing.status_code == 503
    assert reserve.status_code == 503
    assert recovered == 200
    assert still_locked == token
    assert after.status_code == 200
