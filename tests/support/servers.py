"""Start rentabot for a test: in this process on a manual clock, or as a real subprocess.

Every server listens on 127.0.0.1 on a free port and is stopped by the test that
started it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn

from rentabot.api.app import create_app
from rentabot.api.server import KEEP_ALIVE_SECONDS, Server
from rentabot.clock import Clock
from rentabot.config.settings import Settings
from rentabot.service import LockService
from rentabot.storage.base import Store

REPO = Path(__file__).resolve().parents[2]
LAB_DESCRIPTOR = REPO / "examples" / "lab.yaml"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_healthy(
    base_url: str, timeout: float = 30.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode} before it was ready")
        try:
            if httpx.get(base_url + "/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError as error:
            last_error = error
        time.sleep(0.05)
    raise TimeoutError(f"no answer from {base_url}/health within {timeout} s: {last_error}")


@dataclass
class InProcessServer:
    """A real uvicorn server in a background thread, sharing this process's clock and store."""

    base_url: str
    app: object
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def service(self) -> LockService:
        service: LockService = self.app.state.service  # type: ignore[attr-defined]
        return service

    def run(self, coroutine_function, *args):  # type: ignore[no-untyped-def]
        """Run ``coroutine_function(*args)`` on the server's event loop and return its result."""
        loop = self.server_loop
        future = asyncio.run_coroutine_threadsafe(coroutine_function(*args), loop)
        return future.result(timeout=30)

    server_loop: asyncio.AbstractEventLoop = field(init=False)


@contextmanager
def in_process_server(
    settings: Settings | None = None,
    clock: Clock | None = None,
    store: Store | None = None,
    fast_lane: bool = True,
) -> Iterator[InProcessServer]:
    """Serve ``create_app`` on a free port from a thread; stop it on exit."""
    app = create_app(
        settings or Settings(descriptor=LAB_DESCRIPTOR),
        clock=clock,
        store=store,
        fast_lane=fast_lane,
    )
    port = free_port()
    # As the rentabot command does: the application alone decides which proxies to trust.
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="on",
        proxy_headers=False,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    server = Server(config)
    loop_holder: dict[str, asyncio.AbstractEventLoop] = {}

    def serve() -> None:
        loop = asyncio.new_event_loop()
        loop_holder["loop"] = loop
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.serve())
        loop.close()

    thread = threading.Thread(target=serve, name=f"rentabot-test-server-{port}", daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the in-process server stopped during start-up; see the log above")
        if time.monotonic() > deadline:
            raise TimeoutError("the in-process server did not start within 30 s")
        time.sleep(0.01)

    handle = InProcessServer(base_url=base_url, app=app, server=server, thread=thread)
    handle.server_loop = loop_holder["loop"]
    try:
        yield handle
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@dataclass
class ServerProcess:
    """rentabot (or rentabot 1.0.0) running as a child process."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """Stop the server abruptly, as a crash or ``kill -9`` would."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def start_server_process(
    log_path: Path,
    descriptor: Path | None = LAB_DESCRIPTOR,
    env: Mapping[str, str] | None = None,
    python: str | None = None,
    port: int | None = None,
) -> ServerProcess:
    """Start ``uvicorn rentabot.main:app`` with ``python`` (default: this interpreter).

    Pointing ``python`` at another virtual environment runs that environment's rentabot,
    which is how the compatibility tests run against rentabot 1.0.0.
    """
    port = port or free_port()
    child_env = {key: value for key, value in os.environ.items() if not key.startswith("RENTABOT_")}
    if descriptor is not None:
        child_env["RENTABOT_RESOURCE_DESCRIPTOR"] = str(descriptor)
    child_env.update(env or {})
    command = [
        python or sys.executable,
        "-m",
        "uvicorn",
        "rentabot.main:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-proxy-headers",
        # As the rentabot command does, so that clients close idle connections first.
        "--timeout-keep-alive",
        str(KEEP_ALIVE_SECONDS),
        "--log-level",
        "warning",
    ]
    log_file = open(log_path, "wb")
    process = subprocess.Popen(
        command, stdout=log_file, stderr=subprocess.STDOUT, env=child_env, cwd=log_path.parent
    )
    log_file.close()
    server = ServerProcess(f"http://127.0.0.1:{port}", process, log_path)
    return started(server)


def start_rentabot_command(log_path: Path, *arguments: str) -> ServerProcess:
    """Start the ``rentabot`` command itself on a free port, as a user would.

    ``arguments`` come after ``--port``; the environment has no ``RENTABOT_*`` variables.
    """
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("RENTABOT_")}
    command = [sys.executable, "-m", "rentabot.cli.main", "--port", str(port), *arguments]
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=log_path.parent
        )
    server = ServerProcess(f"http://127.0.0.1:{port}", process, log_path)
    return started(server)


def started(server: ServerProcess) -> ServerProcess:
    """Return ``server`` once /health responds; if it never does, kill it and raise with its log."""
    try:
        wait_until_healthy(server.base_url, process=server.process)
    except Exception:
        server.kill()
        raise RuntimeError(f"rentabot did not start; its output:\n{server.log()}") from None
    return server
