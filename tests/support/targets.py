"""Probe targets for health-check tests: a TCP listener and an HTTP server on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.servers import free_port


class TcpTarget:
    """Accepts connections while running; ``stop()`` closes it so connections are refused."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.listener: socket.socket | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> TcpTarget:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.listener = listener
        self.thread = threading.Thread(target=self.accept, args=(listener,), daemon=True)
        self.thread.start()
        return self

    def accept(self, listener: socket.socket) -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connection.close()

    def stop(self) -> None:
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        if self.thread is not None:
            self.thread.join(timeout=5)
            self.thread = None


class HttpTarget:
    """Answers GET with ``status``; with ``hang`` set it accepts and never answers."""

    def __init__(self) -> None:
        self.status = 200
        self.hang = threading.Event()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if target.hang.is_set():
                    target.hang_released.wait(timeout=30)
                    return
                self.send_response(target.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.hang_released = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/health"

    def start(self) -> HttpTarget:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.hang_released.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def wait_for(predicate: object, within: float = 15.0) -> bool:
    """Poll ``predicate()`` until it is true or ``within`` seconds pass; return its last value."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return bool(predicate())  # type: ignore[operator]
