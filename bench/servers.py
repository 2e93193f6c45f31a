"""Start, inspect and stop the servers under test, and prepare what they need.

Both services run as ``<python> -m uvicorn rentabot.main:app`` with the same
options, one at a time, from a scratch working directory so that neither imports a
``rentabot`` package or reads a config file from the current directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from httpclient import Connection

HOST = "127.0.0.1"
BASELINE_REQUIREMENT = "rentabot==1.0.0"
BASELINE_VERSION = "1.0.0"
START_TIMEOUT = 120.0
STOP_TIMEOUT = 15.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# Printed as JSON by each interpreter, so the report can show what actually ran.
VERSIONS_SNIPPET = """
import json, sys
from importlib.metadata import version, PackageNotFoundError
try:
    import rentabot
    path = rentabot.__file__
except ImportError:
    path = None
names = ["rentabot", "fastapi", "starlette", "pydantic", "uvicorn", "uvloop", "httptools"]
found = {}
for name in names:
    try:
        found[name] = version(name)
    except PackageNotFoundError:
        found[name] = None
print(json.dumps({"python": sys.version.split()[0], "rentabot_path": path,
                  "packages": found}))
"""


class BenchmarkError(Exception):
    """A server or a request did not behave as the benchmark needs; the run stops."""


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """One service to measure: its label, interpreter and extra environment."""

    key: str
    label: str
    python: Path
    env: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class Server:
    spec: ServiceSpec
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    # time.perf_counter() just before the process was started.
    started: float
    startup_seconds: float = 0.0

    @property
    def pid(self) -> int:
        return self.process.pid


# Preparing the baseline's virtual environment


def ensure_baseline_venv(venv: Path) -> Path:
    """Return the interpreter of ``venv``, creating it with rentabot 1.0.0 when missing.

    An existing environment is used only if it contains rentabot 1.0.0.
    """
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"Creating {venv} with {BASELINE_REQUIREMENT} (one-time setup)", flush=True)
        run_checked([sys.executable, "-m", "venv", str(venv)])
        run_checked([str(python), "-m", "pip", "install", "--quiet", BASELINE_REQUIREMENT])

    installed = interpreter_versions(python)["packages"].get("rentabot")
    if installed != BASELINE_VERSION:
        raise BenchmarkError(
            f"{venv} contains rentabot {installed}, not {BASELINE_VERSION}; delete that folder "
            "so the script recreates it, or pass another one with --baseline-venv"
        )
    return python


def interpreter_versions(python: Path) -> dict[str, Any]:
    """Return the Python and package versions that ``python`` imports outside the repository."""
    output = run_checked([str(python), "-c", VERSIONS_SNIPPET], cwd=Path("/"))
    return dict(json.loads(output))


def run_checked(command: list[str], cwd: Path | None = None) -> str:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BenchmarkError(
            f"command failed with exit code {result.returncode}: {' '.join(command)}\n"
            f"{result.stderr.strip()}"
        )
    return result.stdout


# Resource descriptors


@dataclass(frozen=True, slots=True)
class DescriptorEntry:
    name: str
    tags: str
    description: str = ""
    endpoint: str = ""


def write_descriptor(path: Path, entries: Iterable[DescriptorEntry]) -> None:
    """Write a YAML descriptor that both services read; JSON strings are valid YAML scalars."""
    lines = []
    for entry in entries:
        lines.append(f"{json.dumps(entry.name)}:")
        lines.append(f"  description: {json.dumps(entry.description)}")
        lines.append(f"  endpoint: {json.dumps(entry.endpoint)}")
        lines.append(f"  tags: {json.dumps(entry.tags)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# Running a server


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free now (another program may take it later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def server_environment(spec: ServiceSpec, descriptor: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("RENTABOT_") and key not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    env["RENTABOT_RESOURCE_DESCRIPTOR"] = str(descriptor)
    env.update(spec.env)
    return env


@contextlib.asynccontextmanager
async def running_server(
    spec: ServiceSpec, descriptor: Path, work_dir: Path, tag: str
) -> AsyncIterator[Server]:
    """Start ``spec`` on a free port, wait until GET /health succeeds, and stop it on exit."""
    server = start_server(spec, descriptor, work_dir, f"{spec.key}-{tag}.log")
    try:
        await wait_until_ready(server)
        yield server
    finally:
        stop_server(server)


@contextlib.asynccontextmanager
async def running_replicas(
    spec: ServiceSpec, descriptor: Path, work_dir: Path, tag: str, count: int
) -> AsyncIterator[list[Server]]:
    """Start ``count`` servers of ``spec`` at once, wait until all are ready, stop all on exit.

    The replicas share the store that ``spec.env`` names, so they must be of a kind
    that several processes can share.
    """
    servers: list[Server] = []
    try:
        for number in range(1, count + 1):
            log_name = f"{spec.key}-{tag}-{number}.log"
            servers.append(start_server(spec, descriptor, work_dir, log_name))
        # They start in parallel, so waiting for one after another costs no extra time.
        for server in servers:
            await wait_until_ready(server)
        yield servers
    finally:
        for server in servers:
            stop_server(server)


def start_server(spec: ServiceSpec, descriptor: Path, work_dir: Path, log_name: str) -> Server:
    """Start ``spec`` on a free port without waiting for it; its output goes to ``log_name``."""
    port = free_port()
    log_path = work_dir / log_name
    command = [
        str(spec.python), "-m", "uvicorn", "rentabot.main:app",
        "--host", HOST, "--port", str(port),
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=work_dir,
            env=server_environment(spec, descriptor),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Server(spec, process, port, log_path, started)


async def wait_until_ready(server: Server) -> None:
    """Poll GET /health until it returns 200, then set ``server.startup_seconds``."""
    deadline = time.perf_counter() + START_TIMEOUT
    while time.perf_counter() < deadline:
        if server.process.poll() is not None:
            raise BenchmarkError(
                f"{server.spec.label} exited with code {server.process.returncode} during "
                f"start-up; its log {server.log_path} ends with:\n{log_tail(server.log_path)}"
            )
        connection = Connection(HOST, server.port)
        try:
            response = await connection.request("GET", "/health")
            if response.status == 200:
                server.startup_seconds = time.perf_counter() - server.started
                return
        except OSError:
            pass
        finally:
            await connection.close()
        await asyncio.sleep(0.05)
    raise BenchmarkError(
        f"{server.spec.label} timed out: GET /health failed for {START_TIMEOUT:.0f} s; "
        f"see {server.log_path}"
    )


def stop_server(server: Server) -> None:
    """Stop the server by its process handle: SIGTERM, then SIGKILL after a grace period."""
    process = server.process
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        print(
            f"{server.spec.label} (pid {process.pid}) ignored SIGTERM for "
            f"{STOP_TIMEOUT:.0f} s; sending SIGKILL",
            file=sys.stderr,
        )
        process.kill()
        process.wait()


def log_tail(path: Path, lines: int = 20) -> str:
    text = path.read_text(encoding="utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


# Reading a server's resource use from /proc


def cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU time of process ``pid``, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name in brackets may contain spaces, so split after its closing bracket.
    fields = stat.rsplit(")", 1)[1].split()
    user_ticks, system_ticks = int(fields[11]), int(fields[12])
    return (user_ticks + system_ticks) / CLOCK_TICKS


def memory_kib(pid: int) -> dict[str, int]:
    """Return VmRSS (resident now) and VmHWM (peak resident) of ``pid``, in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            values[name] = int(rest.split()[0])
    return values


def machine_cpu_seconds() -> float:
    """Return the CPU time all cores have spent busy since boot, from /proc/stat, in seconds.

    Busy is user, nice, system, irq, softirq and steal time; idle and iowait are not.
    """
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


async def wait_for_quiet_machine(max_busy_cores: float, max_wait_seconds: float) -> float:
    """Wait until other processes keep fewer than ``max_busy_cores`` cores busy over 1 s.

    Returns the busy cores of the last 1-second sample. Gives up after
    ``max_wait_seconds`` and returns that sample, so the caller can record it.
    """
    deadline = time.perf_counter() + max_wait_seconds
    announced = False
    while True:
        before, started = machine_cpu_seconds(), time.perf_counter()
        await asyncio.sleep(1.0)
        busy = (machine_cpu_seconds() - before) / (time.perf_counter() - started)
        if busy < max_busy_cores or time.perf_counter() >= deadline:
            return busy
        if not announced:
            print(
                f"Waiting for other processes to settle: they keep {busy:.2f} cores busy, "
                f"the limit is {max_busy_cores:.2f} (waiting at most {max_wait_seconds:.0f} s)",
                flush=True,
            )
            announced = True
