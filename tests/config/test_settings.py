"""Settings from RENTABOT_* variables, with errors that name the variable."""

from __future__ import annotations

import pytest

from rentabot.config.settings import Settings, SettingsError
from rentabot.domain.models import QueuePolicy


def test_defaults() -> None:
    settings = Settings.from_env({})

    assert settings.persist is None
    assert settings.limits.claim_window == 60
    assert settings.limits.queue_policy is QueuePolicy.STRICT
    assert settings.forwarded_allow_ips == ()


def test_values_read() -> None:
    settings = Settings.from_env(
        {
            "RENTABOT_RESOURCE_DESCRIPTOR": "lab.yaml",
            "RENTABOT_PERSIST": "sqlite:///x.db",
            "RENTABOT_CLAIM_WINDOW": "120",
            "RENTABOT_QUEUE_POLICY": "backfill",
            "RENTABOT_FORWARDED_ALLOW_IPS": "10.0.0.1, 192.168.0.0/16",
            "RENTABOT_MAX_PRIORITY": "10",
        }
    )

    assert str(settings.descriptor) == "lab.yaml"
    assert settings.persist == "sqlite:///x.db"
    assert settings.limits.claim_window == 120
    assert settings.limits.queue_policy is QueuePolicy.BACKFILL
    assert settings.forwarded_allow_ips == ("10.0.0.1", "192.168.0.0/16")
    assert settings.limits.max_priority == 10


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"RENTABOT_CLAIM_WINDOW": "soon"}, "RENTABOT_CLAIM_WINDOW='soon'"),
        ({"RENTABOT_CLAIM_WINDOW": "0"}, "RENTABOT_CLAIM_WINDOW=0"),
        ({"RENTABOT_QUEUE_POLICY": "random"}, "RENTABOT_QUEUE_POLICY='random'"),
        ({"RENTABOT_FORWARDED_ALLOW_IPS": "proxy.local"}, "'proxy.local'"),
        ({"RENTABOT_MIN_PRIORITY": "5", "RENTABOT_MAX_PRIORITY": "1"}, "RENTABOT_MIN_PRIORITY=5"),
    ],
    ids=["not-a-number", "zero-window", "unknown-policy", "proxy-name", "priority-range"],
)
def test_bad_setting_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env(env)

    assert named in str(raised.value)
