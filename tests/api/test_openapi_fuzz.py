"""The OpenAPI document is the truth: a fuzzer finds no 5xx, no undeclared status, no
response off its schema, with authentication off and on.

Schemathesis generates requests from the document and sends them over real HTTP to a
server on 127.0.0.1. Rejections of schema-valid input that the schema cannot express
(a time in the past, a lock with no criterion) are not what this test checks.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from rentabot.clock import ManualClock, utc_now
from rentabot.config.settings import Settings
from tests.support.auth import ADMIN_TOKEN, write_auth_file
from tests.support.servers import LAB_DESCRIPTOR, InProcessServer, in_process_server

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.response_schema_conformance,
    checks.content_type_conformance,
]
# The event stream never ends, so a request to it never completes.
SKIPPED_PATHS = ("/api/v1/events",)


@pytest.fixture(scope="module", params=["auth-off", "auth-on"])
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, InProcessServer]]:
    auth_file = (
        write_auth_file(tmp_path_factory.mktemp("auth")) if request.param == "auth-on" else None
    )
    settings_ = Settings(descriptor=LAB_DESCRIPTOR, auth_config=auth_file)
    with in_process_server(settings_, clock=ManualClock(start=utc_now())) as server:
        # Resource 1, the documented example id, is out of rotation, so 409 is reachable.
        headers = {"X-API-Key": ADMIN_TOKEN} if auth_file else {}
        marked = httpx.post(
            f"{server.base_url}/api/v1/resources/1/unavailable",
            json={"reason": "fuzzing"},
            headers=headers,
        )
        assert marked.status_code == 200
        yield request.param, server


def test_every_operation_conforms(served: tuple[str, InProcessServer]) -> None:
    mode, server = served
    schema = schemathesis.openapi.from_url(f"{server.base_url}/openapi.json")
    headers = {"X-API-Key": ADMIN_TOKEN} if mode == "auth-on" else {}
    failures: list[str] = []
    tested = 0

    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in SKIPPED_PATHS:
            continue
        tested += 1

        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            try:
                case.call_and_validate(headers=headers, checks=CHECKS, timeout=10)
            except Exception as error:  # Each failure is collected and reported below.
                failures.append(f"{case.method} {case.formatted_path}: {error}")

        run()

    assert tested > 20
    assert failures == []
