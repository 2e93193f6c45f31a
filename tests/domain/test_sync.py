"""Descriptor sync: resources matched by name, so ids stay stable across edits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rentabot.domain.commands import ResourceSpec
from rentabot.domain.models import Holder
from tests.support.lab import Lab, specs


@pytest.fixture
def lab(store_url: str | None) -> Iterator[Lab]:
    built = Lab(specs(("a", "x"), ("b", "x"), ("c", "y")), store_url=store_url)
    yield built
    built.close()


def ids_by_name(lab: Lab) -> dict[str, int]:
    listing = lab.run(lab.service.list_resources())
    return {resource.name: resource.id for resource in listing.resources}


def test_fresh_ids_follow_descriptor_order(lab: Lab) -> None:
    assert ids_by_name(lab) == {"a": 1, "b": 2, "c": 3}


def test_reordered_descriptor_keeps_ids(lab: Lab) -> None:
    lab.run(lab.service.sync_resources(specs(("c", "y"), ("a", "x"), ("b", "x"))))

    assert ids_by_name(lab) == {"a": 1, "b": 2, "c": 3}


def test_new_name_gets_next_id(lab: Lab) -> None:
    lab.run(lab.service.sync_resources(specs(("new", "z"), ("a", "x"), ("b", "x"), ("c", "y"))))

    assert ids_by_name(lab)["new"] == 4


def test_removed_name_gets_id_back(lab: Lab) -> None:
    lab.run(lab.service.sync_resources(specs(("a", "x"), ("c", "y"))))
    assert "b" not in ids_by_name(lab)

    lab.run(lab.service.sync_resources(specs(("a", "x"), ("b", "x"), ("c", "y"))))

    assert ids_by_name(lab)["b"] == 2


def test_changed_fields_updated(lab: Lab) -> None:
    changed = [
        ResourceSpec("a", description="moved to rack B", tags_text="x, z", max_lock_duration=60),
        *specs(("b", "x"), ("c", "y")),
    ]

    counts = lab.run(lab.service.sync_resources(changed))

    resource = lab.resource(1)
    assert counts["updated"] == 1
    assert resource.description == "moved to rack B"
    assert resource.tags == {"x", "z"}
    assert resource.max_lock_duration == 60


def test_removed_locked_resource_retired(lab: Lab) -> None:
    token = lab.lock(2)

    counts = lab.run(lab.service.sync_resources(specs(("a", "x"), ("c", "y"))))

    assert counts["retired"] == 1
    assert lab.resource(2).retired
    lab.unlock(2, token)
    assert "b" not in ids_by_name(lab)


def test_retired_resource_skipped_by_tags(lab: Lab) -> None:
    lab.lock(2)
    lab.run(lab.service.sync_resources(specs(("a", "x"), ("c", "y"))))

    tagged = [r.id for r in lab.run(lab.service.list_resources()).resources if "x" in r.tags]
    assert tagged == [1, 2]
    resource, _ = lab.run(lab.service.lock_matching(None, None, ["x"], 60, Holder()))
    assert resource.id == 1
