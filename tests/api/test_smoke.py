import httpx

from rentabot.clock import ManualClock
from tests.support.servers import InProcessServer


def test_lock_then_expiry_frees(server: InProcessServer, clock: ManualClock) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        locked = client.post("/api/v1/resources/1/lock", json={"ttl": 10})
        assert locked.status_code == 200
        clock.advance(10)
        again = client.post("/api/v1/resources/1/lock", json={"ttl": 10})
        assert again.status_code == 200
