"""Build the FastAPI application: settings, store, service, routes and start-up."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from rentabot import __version__
from rentabot.api import audit, docs, openapi
from rentabot.api.access_log import redact_access_log
from rentabot.api.auth import Authenticator
from rentabot.api.errors import install_error_handlers, status_for
from rentabot.api.fastlane import FastLane
from rentabot.api.routes import admin, availability, events, health, reservations, resources
from rentabot.clock import Clock, SystemClock
from rentabot.config.auth import AuthConfig, AuthConfigError, load_auth_config
from rentabot.config.descriptor import DescriptorError, load_descriptor
from rentabot.config.settings import Settings, SettingsError
from rentabot.domain.commands import ResourceSpec
from rentabot.eventbus import EventBus
from rentabot.health import HealthChecker
from rentabot.service import LockService
from rentabot.storage.base import Store
from rentabot.storage.factory import StoreURLError, open_store
from rentabot.web import page

logger = logging.getLogger("rentabot")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RentabotApp(FastAPI):
    """FastAPI, with the fast lane (and trusted proxy headers) in front of its middleware.

    FastAPI's own middleware stack costs more per request than the fast lane saves, so
    the requests the fast lane handles skip it entirely.
    """

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.front is None:
            await super().__call__(scope, receive, send)
            return
        scope.setdefault("app", self)
        await self.front(scope, receive, send)

    async def behind_front(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


def front_of(app: RentabotApp, settings: Settings, fast_lane: bool) -> ASGIApp | None:
    """Return what handles a request before FastAPI: proxy headers, then the fast lane."""
    if not fast_lane and not settings.forwarded_allow_ips:
        return None
    front: ASGIApp = app.behind_front
    if fast_lane:
        front = FastLane(front)
    if settings.forwarded_allow_ips:
        # Proxy headers set the client IP only when the peer is one of these proxies.
        # uvicorn types ASGI callables more narrowly than Starlette; both are ASGI.
        proxied = ProxyHeadersMiddleware(
            cast(Any, front), trusted_hosts=list(settings.forwarded_allow_ips)
        )
        front = cast(ASGIApp, proxied)
    return front


class StartupError(Exception):
    """The service cannot start; the message names the setting or file to fix."""


def configure_logging(level: str) -> None:
    """Send rentabot's logs to standard error, unless the host program already handles logs.

    A host that configured the root logger (a test runner, an embedding program) keeps
    receiving rentabot's records through it.
    """
    logger.setLevel(level.upper())
    redact_access_log()
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger.addHandler(handler)
    logger.propagate = False


def create_app(
    settings: Settings | None = None,
    *,
    clock: Clock | None = None,
    store: Store | None = None,
    fast_lane: bool = True,
) -> FastAPI:
    """Return the application. Settings default to the ``RENTABOT_*`` environment.

    Tests pass a manual ``clock``, their own ``store`` when they want to look inside,
    and ``fast_lane=False`` to compare the fast lane with the FastAPI routes.
    A settings problem is reported when the application starts, not on import.
    """
    settings_error: SettingsError | None = None
    if settings is None:
        try:
            settings = Settings.from_env()
        except SettingsError as error:
            settings_error, settings = error, Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        assert settings is not None
        configure_logging(settings.log_level)
        if settings_error is not None:
            logger.error("startup.failed %s", settings_error)
            raise StartupError(str(settings_error))

        app.state.auth_config = load_auth(settings)
        app.state.authenticator = Authenticator(app.state.auth_config)
        specs = load_specs(settings)
        service = await start_service(settings, clock, store, specs)
        app.state.service = service
        checker = HealthChecker(
            service, {spec.name: spec.health_check for spec in specs or [] if spec.health_check}
        )
        del specs  # This frame lives as long as the application: let the descriptor go.
        checker.start()
        try:
            yield
        finally:
            await checker.stop()
            await service.stop()
            await service.store.close()
            logger.info("service.stopped")

    app = RentabotApp(
        title="rentabot",
        version=__version__,
        description="Exclusive, time-limited locks on shared resources for CI pipelines, "
        "bots and people. Compatible with the rentabot 1.0.0 API.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    openapi.install(app, settings.limits)
    docs.install(app)
    app.include_router(resources.router)
    app.include_router(reservations.router)
    app.include_router(health.router)
    app.include_router(availability.router)
    app.include_router(admin.router)
    app.include_router(audit.router)
    app.include_router(events.router)
    app.include_router(page.router)

    app.front = front_of(app, settings, fast_lane)
    return app


def load_auth(settings: Settings) -> AuthConfig:
    """Read the authentication settings, or stop start-up with the file's problem."""
    try:
        config = load_auth_config(settings.auth_config)
    except AuthConfigError as error:
        logger.error("startup.failed %s", error)
        raise StartupError(str(error)) from None

    if config.enabled:
        names = sorted(entry.name for entry in config.tokens)
        logger.info(
            "auth.enabled tokens=%d names=%s protect_reads=%s",
            len(names),
            ",".join(names),
            config.protect_reads,
        )
    else:
        logger.warning(
            "auth.disabled anyone who can reach this service can lock, unlock, reserve and "
            "mark unavailable every resource; set --auth-config to require tokens"
        )
    return config


def load_specs(settings: Settings) -> list[ResourceSpec] | None:
    """Read the descriptor, or return None when there is none."""
    if settings.descriptor is None:
        logger.info("descriptor.missing starting with the resources already in the store")
        return None
    try:
        descriptor = load_descriptor(
            settings.descriptor,
            default_max_lock_duration=settings.limits.default_max_lock_duration,
            max_ttl=settings.limits.max_ttl,
        )
    except DescriptorError as error:
        logger.error("startup.failed %s", error)
        raise StartupError(str(error)) from None
    logger.info(
        "descriptor.loaded path=%s resources=%d", descriptor.path, len(descriptor.resources)
    )
    return descriptor.resources


async def start_service(
    settings: Settings,
    clock: Clock | None,
    store: Store | None,
    specs: list[ResourceSpec] | None,
) -> LockService:
    if store is None:
        try:
            store = open_store(settings.persist)
        except StoreURLError as error:
            logger.error("startup.failed %s", error)
            raise StartupError(str(error)) from None
    await store.start()

    clock = clock or store.default_clock() or SystemClock()
    service = LockService(store, clock, settings.limits, EventBus(), error_status=status_for)
    await service.start(specs)
    logger.info(
        "service.started store=%s queue_policy=%s claim_window=%d",
        store.describe(),
        settings.limits.queue_policy.value,
        settings.limits.claim_window,
    )
    return service
