"""Fixtures shared by every test module.

Tests that need PostgreSQL or a browser are marked; when CI=true such a test may not
skip, because a skipped test there would hide a missing service.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from rentabot.clock import ManualClock
from rentabot.config.settings import Settings
from tests.support.postgres import fresh_schema
from tests.support.servers import LAB_DESCRIPTOR, InProcessServer, in_process_server

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Generator[None, Any, None]:
    """Turn a skip of a postgres or browser test into a failure when CI=true."""
    outcome = yield
    report = outcome.get_result()
    needs_service = item.get_closest_marker("postgres") or item.get_closest_marker("browser")
    if IN_CI and needs_service and report.skipped:
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} was skipped in CI ({report.longrepr}); CI must run the "
            "PostgreSQL and browser tests, so start PostgreSQL or install Chromium"
        )


STORE_KINDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(params=STORE_KINDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """The --persist value of each store kind: None for memory, a fresh database otherwise."""
    if request.param == "memory":
        yield None
    elif request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'rentabot.db'}"
    else:
        with fresh_schema() as url:
            yield url


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def server(clock: ManualClock, store_url: str | None) -> Iterator[InProcessServer]:
    """rentabot on examples/lab.yaml, on a manual clock, over real HTTP, in each store kind."""
    settings = Settings(descriptor=LAB_DESCRIPTOR, persist=store_url)
    with in_process_server(settings, clock=clock) as running:
        yield running
