"""Service settings, read from ``RENTABOT_*`` environment variables.

The ``rentabot`` command turns its options into these variables, so the service
reads its settings the same way whether it was started by the command or by
``uvicorn rentabot.main:app``.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rentabot.domain.limits import Limits
from rentabot.domain.models import QueuePolicy

ENV_PREFIX = "RENTABOT_"
DESCRIPTOR_ENV = "RENTABOT_RESOURCE_DESCRIPTOR"
DEFAULTS = Limits()


class SettingsError(Exception):
    """A setting has a value the service cannot use; the message names it and the fix."""


@dataclass(frozen=True, slots=True)
class Settings:
    descriptor: Path | None = None
    persist: str | None = None
    limits: Limits = field(default_factory=Limits)
    auth_config: Path | None = None
    forwarded_allow_ips: tuple[str, ...] = ()
    log_level: str = "info"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        reader = _EnvReader(env)
        limits = Limits(
            claim_window=reader.integer("CLAIM_WINDOW", DEFAULTS.claim_window, low=1),
            queue_policy=reader.choice("QUEUE_POLICY", QueuePolicy, DEFAULTS.queue_policy),
            max_ttl=reader.integer("MAX_TTL", DEFAULTS.max_ttl, low=1),
            max_wait_time=reader.integer("MAX_WAIT_TIME", DEFAULTS.max_wait_time, low=1),
            max_quantity=reader.integer("MAX_QUANTITY", DEFAULTS.max_quantity, low=1),
            min_priority=reader.integer("MIN_PRIORITY", DEFAULTS.min_priority),
            max_priority=reader.integer("MAX_PRIORITY", DEFAULTS.max_priority),
        )
        if limits.min_priority > limits.max_priority:
            raise SettingsError(
                f"RENTABOT_MIN_PRIORITY={limits.min_priority} is above "
                f"RENTABOT_MAX_PRIORITY={limits.max_priority}; swap them"
            )

        descriptor = env.get(DESCRIPTOR_ENV) or None
        auth_config = reader.text("AUTH_CONFIG")
        return cls(
            descriptor=Path(descriptor) if descriptor else None,
            persist=reader.text("PERSIST"),
            limits=limits,
            auth_config=Path(auth_config) if auth_config else None,
            forwarded_allow_ips=parse_proxy_list(reader.text("FORWARDED_ALLOW_IPS") or ""),
            log_level=(reader.text("LOG_LEVEL") or "info").lower(),
        )


def parse_proxy_list(text: str) -> tuple[str, ...]:
    """Parse a comma-separated list of proxy addresses or networks (CIDR), or ``*``."""
    entries = tuple(part.strip() for part in text.split(",") if part.strip())
    for entry in entries:
        if entry == "*":
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError as error:
            raise SettingsError(
                f"RENTABOT_FORWARDED_ALLOW_IPS: {entry!r} is not an IP address or network; "
                "give addresses like 10.0.0.5 or 10.0.0.0/24, separated by commas"
            ) from error
    return entries


class _EnvReader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def text(self, name: str) -> str | None:
        value = self.env.get(ENV_PREFIX + name, "").strip()
        return value or None

    def integer(self, name: str, default: int, low: int | None = None) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError as error:
            raise SettingsError(
                f"{ENV_PREFIX}{name}={raw!r} is not a whole number; set an integer"
            ) from error
        if low is not None and value < low:
            raise SettingsError(f"{ENV_PREFIX}{name}={value} must be at least {low}")
        return value

    def choice(self, name: str, choices: type[QueuePolicy], default: QueuePolicy) -> QueuePolicy:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            return choices(raw.lower())
        except ValueError as error:
            allowed = ", ".join(member.value for member in choices)
            raise SettingsError(f"{ENV_PREFIX}{name}={raw!r} is not one of: {allowed}") from error
