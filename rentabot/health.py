"""Health checks: probe resources declared with ``health_check`` and take dead ones out.

Each check runs in its own task, so a slow target delays no other check. After
``failures`` failed probes in a row the resource is marked unavailable with the
failure as the reason; it comes back when a probe passes again, but only if a health
check was what took it out: an admin's reason is never overridden. With several
replicas, only the one that leads background work runs the probes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rentabot.domain.audit import AuditRequest
from rentabot.domain.commands import HealthCheckSpec
from rentabot.domain.errors import RentabotError
from rentabot.domain.models import SYSTEM_ACTOR, UnavailabilitySource
from rentabot.service import LockService
from rentabot.storage.base import StoreUnavailable

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

OPERATION = "health-check"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    ok: bool
    detail: str


async def probe(spec: HealthCheckSpec, client: httpx.AsyncClient | None) -> ProbeResult:
    """Run one probe and return its result, which describes any failure; never raises."""
    if spec.kind == "tcp":
        return await probe_tcp(spec)
    assert client is not None, "start() creates the HTTP client when an http check exists"
    return await probe_http(spec, client)


async def probe_tcp(spec: HealthCheckSpec) -> ProbeResult:
    host, _, port = spec.target.rpartition(":")
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host.strip("[]"), int(port)), spec.timeout
        )
    except TimeoutError:
        return ProbeResult(False, f"tcp {spec.target}: no connection within {spec.timeout:g} s")
    except OSError as error:
        return ProbeResult(False, f"tcp {spec.target}: {error.strerror or error}")
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return ProbeResult(True, f"tcp {spec.target}: connected")


async def probe_http(spec: HealthCheckSpec, client: httpx.AsyncClient) -> ProbeResult:
    import httpx

    try:
        response = await client.get(spec.target, timeout=spec.timeout)
    except httpx.TimeoutException:
        return ProbeResult(False, f"http {spec.target}: no answer within {spec.timeout:g} s")
    except httpx.HTTPError as error:
        return ProbeResult(False, f"http {spec.target}: {type(error).__name__}: {error}")
    if response.status_code != spec.expect_status:
        return ProbeResult(
            False,
            f"http {spec.target}: status {response.status_code}, expected {spec.expect_status}",
        )
    return ProbeResult(True, f"http {spec.target}: status {response.status_code}")


class HealthChecker:
    """Runs the probes of every resource that declares a health check."""

    def __init__(self, service: LockService, checks: dict[str, HealthCheckSpec]) -> None:
        self.service = service
        self.checks = checks
        self.tasks: list[asyncio.Task[None]] = []
        self.client: httpx.AsyncClient | None = None

    def start(self) -> None:
        if any(spec.kind == "http" for spec in self.checks.values()):
            # Imported here: httpx costs a few megabytes that a lab without checks need not pay.
            import httpx

            # Probes never go through a proxy: targets are lab devices on the local network.
            self.client = httpx.AsyncClient(trust_env=False, follow_redirects=False)
        for name, spec in self.checks.items():
            task = asyncio.create_task(self.run(name, spec), name=f"rentabot-health-{name}")
            self.tasks.append(task)
        if self.checks:
            logger.info("health.started checks=%d", len(self.checks))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()
        if self.client is not None:
            await self.client.aclose()

    async def run(self, name: str, spec: HealthCheckSpec) -> None:
        failures = 0
        while True:
            try:
                if await self.service.store.lead_background_work():
                    result = await probe(spec, self.client)
                    failures = 0 if result.ok else failures + 1
                    await self.apply(name, spec, result, failures)
            except (StoreUnavailable, RentabotError) as error:
                logger.warning("health.apply_failed resource=%s error=%s", name, error)
            except Exception:
                # An unexpected error in one round is logged, and the check goes on.
                logger.exception("health.round_failed resource=%s", name)
            await asyncio.sleep(spec.interval)

    async def apply(
        self, name: str, spec: HealthCheckSpec, result: ProbeResult, failures: int
    ) -> None:
        resource = await self.resource_named(name)
        if resource is None:
            return
        resource_id, current = resource
        audit = AuditRequest(OPERATION, SYSTEM_ACTOR, 200, resource_id)
        set_by_check = current is not None and current is UnavailabilitySource.HEALTH_CHECK

        if result.ok:
            if set_by_check:
                logger.info("health.passed resource=%s detail=%s", name, result.detail)
                await self.service.mark_available(
                    resource_id, UnavailabilitySource.HEALTH_CHECK, audit
                )
            return

        logger.info(
            "health.failed resource=%s failures=%d detail=%s", name, failures, result.detail
        )
        if failures >= spec.failures and current is None:
            reason = f"health check failed {failures} times in a row: {result.detail}"
            await self.service.mark_unavailable(
                resource_id, reason, None, UnavailabilitySource.HEALTH_CHECK, audit
            )

    async def resource_named(self, name: str) -> tuple[int, UnavailabilitySource | None] | None:
        listing = await self.service.list_resources()
        for resource in listing.resources:
            if resource.name == name:
                away = resource.unavailability
                active = away is not None and away.active_at(listing.now)
                return resource.id, away.source if active and away is not None else None
        return None
