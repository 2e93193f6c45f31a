"""Run the application under uvicorn so that it stops promptly.

An open event stream never finishes by itself, and uvicorn waits for open responses
before it stops. This server ends the streams when shutdown begins (clients reconnect
to the next server and resume), and gives up waiting after a short grace period.
"""

from __future__ import annotations

import logging
import socket

import uvicorn
from starlette.applications import Starlette

from rentabot.api.routes.events import close_event_streams

logger = logging.getLogger(__name__)

# Seconds uvicorn waits for requests still running when it stops, event streams aside.
GRACEFUL_SHUTDOWN_SECONDS = 5

# Seconds an idle keep-alive connection stays open. uvicorn's default of 5 s equals the
# idle expiry of httpx and is below the 60 s idle timeout of AWS load balancers. A
# client may then send a request on a connection just as the server closes it, and the
# request fails. With a longer timeout here, the client closes idle connections first.
KEEP_ALIVE_SECONDS = 75


class Server(uvicorn.Server):
    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        app = application_of(self.config)
        if app is not None:
            close_event_streams(app)
        await super().shutdown(sockets)


def application_of(config: uvicorn.Config) -> Starlette | None:
    """Return the rentabot application that ``config`` serves, if it is one."""
    app = config.app
    if isinstance(app, str):
        from rentabot import main

        return main.app
    return app if isinstance(app, Starlette) else None


def serve(config: uvicorn.Config) -> None:
    Server(config).run()
