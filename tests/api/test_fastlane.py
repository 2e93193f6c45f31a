"""The fast lane answers exactly as the FastAPI routes do, for every request it takes or declines."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rentabot.clock import ManualClock
from tests.support.servers import in_process_server

TOKEN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

# Each step: method, path (with {token} for the token of the last successful lock), options.
SCRIPT: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/v1/resources/1/lock", {}),
    ("POST", "/api/v1/resources/1/lock", {}),
    ("POST", "/api/v1/resources/1/unlock", {"params": {"lock-token": "wrong"}}),
    ("POST", "/api/v1/resources/1/unlock", {}),
    (
        "POST",
        "/api/v1/resources/1/extend",
        {"params": {"lock-token": "{token}", "additional-ttl": "60"}},
    ),
    (
        "POST",
        "/api/v1/resources/1/extend",
        {"params": {"lock-token": "{token}", "additional-ttl": "0"}},
    ),
    (
        "POST",
        "/api/v1/resources/1/extend",
        {"params": {"lock-token": "{token}", "additional-ttl": "x"}},
    ),
    (
        "POST",
        "/api/v1/resources/1/extend",
        {"params": {"lock-token": "{token}", "additional-ttl": "99999999"}},
    ),
    ("POST", "/api/v1/resources/1/extend", {"params": {"lock-token": "{token}"}}),
    ("POST", "/api/v1/resources/1/unlock", {"params": {"lock-token": "{token}"}}),
    ("POST", "/api/v1/resources/1/unlock", {"params": {"lock-token": "{token}"}}),
    ("POST", "/api/v1/resources/2/lock", {"json": {"ttl": 120, "locked_by_label": "job-7"}}),
    ("POST", "/api/v1/resources/3/lock", {"json": {"ttl": 0}}),
    ("POST", "/api/v1/resources/3/lock", {"json": {"ttl": -5}}),
    ("POST", "/api/v1/resources/3/lock", {"json": {"ttl": 1.5}}),
    ("POST", "/api/v1/resources/3/lock", {"json": {"ttl": True}}),
    ("POST", "/api/v1/resources/3/lock", {"json": {"ttl": "60"}}),
    ("POST", "/api/v1/resources/3/lock", {"json": {"ttl": 10**9}}),
    ("POST", "/api/v1/resources/3/lock", {"json": {"ttl": 99999}}),
    ("POST", "/api/v1/resources/4/lock", {"json": {"locked_by_label": "x" * 257}}),
    ("POST", "/api/v1/resources/4/lock", {"json": [1, 2]}),
    ("POST", "/api/v1/resources/4/lock", {"json": None}),
    (
        "POST",
        "/api/v1/resources/5/lock",
        {"content": b"{not json", "headers": {"content-type": "application/json"}},
    ),
    ("POST", "/api/v1/resources/5/lock", {"json": {"ttl": 60, "colour": "red"}}),
    ("POST", "/api/v1/resources/6/lock", {"params": {"extra": "1"}}),
    ("POST", "/api/v1/resources/999/lock", {}),
    ("POST", "/api/v1/resources/999/unlock", {"params": {"lock-token": "t"}}),
    (
        "POST",
        "/api/v1/resources/999/extend",
        {"params": {"lock-token": "t", "additional-ttl": "5"}},
    ),
    ("POST", "/api/v1/resources/0/lock", {}),
]


def normalise(body: Any) -> Any:
    """Replace lock tokens, which are random, so two runs compare equal."""
    return TOKEN.sub("<token>", httpx.Response(200, json=body).text) if body is not None else None


def play(base_url: str) -> list[tuple[int, Any]]:
    answers = []
    token = ""
    with httpx.Client(base_url=base_url) as client:
        for method, path, options in SCRIPT:
            options = dict(options)
            if "params" in options:
                options["params"] = {
                    key: value.replace("{token}", token) for key, value in options["params"].items()
                }
            response = client.request(method, path, **options)
            body = response.json() if response.content else None
            if response.status_code == 200 and isinstance(body, dict) and "lock-token" in body:
                token = body["lock-token"]
            answers.append((response.status_code, normalise(body)))
    return answers


@pytest.fixture
def both_answers() -> Iterator[tuple[list[tuple[int, Any]], list[tuple[int, Any]]]]:
    fast_clock, plain_clock = ManualClock(), ManualClock()
    with (
        in_process_server(clock=fast_clock) as fast,
        in_process_server(clock=plain_clock, fast_lane=False) as plain,
    ):
        yield play(fast.base_url), play(plain.base_url)


def test_fast_lane_matches_routes(
    both_answers: tuple[list[tuple[int, Any]], list[tuple[int, Any]]],
) -> None:
    fast, plain = both_answers

    for step, (fast_answer, plain_answer) in enumerate(zip(fast, plain, strict=True)):
        method, path, options = SCRIPT[step]
        assert fast_answer == plain_answer, f"step {step}: {method} {path} {options}"


def test_script_reaches_every_status(
    both_answers: tuple[list[tuple[int, Any]], list[tuple[int, Any]]],
) -> None:
    statuses = {status for status, _ in both_answers[0]}

    assert statuses >= {200, 400, 403, 404, 422}
