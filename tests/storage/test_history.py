"""Stored event history stays bounded on PostgreSQL, as on SQLite."""

from __future__ import annotations

import pytest

from rentabot.storage.sql import postgres
from tests.support.lab import Lab, specs
from tests.support.postgres import fresh_schema

pytestmark = pytest.mark.postgres


def test_postgres_history_pruned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "EVENTS_KEPT", 5)
    with fresh_schema() as url:
        lab = Lab(specs(("a", "x"), ("b", "x")), store_url=url)
        try:
            for _ in range(6):
                lab.unlock(1, lab.lock(1))
            pruned = lab.run(lab.store.prune_history())
            from_start = lab.run(lab.store.events_after(0, 100))
            recent = lab.run(lab.store.events_after(9, 100))
        finally:
            lab.close()

    # Two additions and twelve lock changes make 14 events; the newest 5 stay.
    assert pruned == 9
    assert from_start is None
    assert [event.id for event in recent or []] == [10, 11, 12, 13, 14]
