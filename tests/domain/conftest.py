from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.lab import Lab, specs


@pytest.fixture
def lab(store_url: str | None) -> Iterator[Lab]:
    """Three phones tagged android (the first with a 600 s max) and two boards tagged arm."""
    built = Lab(
        specs(
            ("phone-1", "android, phone", 600),
            ("phone-2", "android, phone"),
            ("phone-3", "android, phone"),
            ("board-1", "arm, board"),
            ("board-2", "arm, board"),
        ),
        store_url=store_url,
    )
    yield built
    built.close()
