"""The client IP comes from X-Forwarded-For only when the peer is a configured proxy."""

from __future__ import annotations

import httpx

from rentabot.config.settings import Settings
from tests.support.servers import LAB_DESCRIPTOR, in_process_server


def locked_by_ip(base_url: str) -> str | None:
    with httpx.Client(base_url=base_url) as client:
        client.post("/api/v1/resources/1/lock", headers={"X-Forwarded-For": "203.0.113.9"})
        resource: dict[str, str | None] = client.get("/api/v1/resources/1").json()["resource"]
    return resource["locked_by_ip"]


def test_forwarded_header_ignored_by_default() -> None:
    with in_process_server(Settings(descriptor=LAB_DESCRIPTOR)) as server:
        assert locked_by_ip(server.base_url) == "127.0.0.1"


def test_forwarded_header_trusted_from_proxy() -> None:
    settings = Settings(descriptor=LAB_DESCRIPTOR, forwarded_allow_ips=("127.0.0.1",))
    with in_process_server(settings) as server:
        assert locked_by_ip(server.base_url) == "203.0.113.9"


def test_forwarded_header_ignored_from_others() -> None:
    settings = Settings(descriptor=LAB_DESCRIPTOR, forwarded_allow_ips=("10.0.0.0/8",))
    with in_process_server(settings) as server:
        assert locked_by_ip(server.base_url) == "127.0.0.1"
