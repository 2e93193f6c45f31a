"""The page listens for every event the service publishes (EventSource needs each name)."""

from __future__ import annotations

import re
from pathlib import Path

from rentabot.domain import events

LIVE_JS = Path(events.__file__).parents[1] / "web" / "static" / "live.js"


def test_page_listens_for_every_event() -> None:
    published = {
        value for name, value in vars(events).items() if name.isupper() and isinstance(value, str)
    }
    listened = set(re.findall(r'"([a-z]+\.[a-z_.]+)"', LIVE_JS.read_text()))

    assert published - listened == set()
