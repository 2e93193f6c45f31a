from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def clean_environment() -> Iterator[None]:
    """The command exports its options as RENTABOT_* variables; undo that after each test."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("RENTABOT_"):
            del os.environ[name]
    yield
    os.environ.clear()
    os.environ.update(saved)
