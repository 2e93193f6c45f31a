"""Lock tokens never reach the access log, which prints every request's query string."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from rentabot.api.access_log import REDACTED, redact_query
from tests.support.servers import LAB_DESCRIPTOR, start_rentabot_command


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "/api/v1/resources/1/unlock?lock-token=abc",
            f"/api/v1/resources/1/unlock?lock-token={REDACTED}",
        ),
        (
            "/api/v1/resources/1/extend?additional-ttl=60&lock-token=abc",
            f"/api/v1/resources/1/extend?additional-ttl=60&lock-token={REDACTED}",
        ),
        ("/x?lock%2Dtoken=abc&lock-token=def", f"/x?lock%2Dtoken={REDACTED}&lock-token={REDACTED}"),
        ("/x?lock-token", f"/x?lock-token={REDACTED}"),
        ("/api/v1/resources?tag=a&tag=b", "/api/v1/resources?tag=a&tag=b"),
        ("/api/v1/resources", "/api/v1/resources"),
    ],
)
def test_redact_query_cases(path: str, expected: str) -> None:
    assert redact_query(path) == expected


def run_session(base_url: str) -> list[str]:
    """Lock, extend and unlock with tokens in the query string; return the tokens used."""
    tokens = []
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        for resource_id in (1, 2):
            locked = client.post(f"/api/v1/resources/{resource_id}/lock", json={"ttl": 60})
            assert locked.status_code == 200, locked.text
            tokens.append(locked.json()["lock-token"])

        first, second = tokens
        extended = client.post(
            "/api/v1/resources/1/extend", params={"lock-token": first, "additional-ttl": 60}
        )
        assert extended.status_code == 200, extended.text
        unlocked = client.post("/api/v1/resources/1/unlock", params={"lock-token": first})
        assert unlocked.status_code == 200, unlocked.text
        # The same parameter with its dash percent-encoded, which the API decodes too.
        encoded = client.post(f"/api/v1/resources/2/unlock?lock%2Dtoken={second}")
        assert encoded.status_code == 200, encoded.text
    return tokens


def test_access_log_hides_lock_tokens(tmp_path: Path) -> None:
    log_path = tmp_path / "server.log"
    server = start_rentabot_command(
        log_path, "--config", str(LAB_DESCRIPTOR), "--log-level", "info"
    )
    try:
        tokens = run_session(server.base_url)
    finally:
        server.stop()

    output = log_path.read_text(encoding="utf-8", errors="replace")
    # The access log is on: without these lines the check below would prove nothing.
    assert f"/api/v1/resources/1/unlock?lock-token={REDACTED}" in output, output[-2000:]
    assert f"/api/v1/resources/2/unlock?lock%2Dtoken={REDACTED}" in output, output[-2000:]
    for token in tokens:
        assert token not in output
