"""Every client-visible error has exactly one HTTP status, chosen in one place."""

from __future__ import annotations

from rentabot.api.errors import STATUS_BY_ERROR
from rentabot.domain import errors


def leaves(cls: type[errors.RentabotError]) -> set[type[errors.RentabotError]]:
    subclasses = cls.__subclasses__()
    if not subclasses:
        return {cls}
    found: set[type[errors.RentabotError]] = set()
    for subclass in subclasses:
        found |= leaves(subclass)
    return found


def test_every_error_leaf_has_status() -> None:
    missing = leaves(errors.RentabotError) - STATUS_BY_ERROR.keys()

    assert not missing, f"no HTTP status for {sorted(cls.__name__ for cls in missing)}"


def test_statuses_are_client_errors() -> None:
    assert all(400 <= status < 500 for status in STATUS_BY_ERROR.values())
