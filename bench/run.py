"""Measure this rentabot against rentabot 1.0.0 from PyPI, on this machine, in one run.

Run from the repository root:

    .venv/bin/python bench/run.py            # full run, rewrites docs/benchmarks.md
    .venv/bin/python bench/run.py --quick    # short smoke run, leaves the docs alone

Both services are started the same way (``python -m uvicorn rentabot.main:app`` on
127.0.0.1 with the same options), one at a time. The client runs in this process,
separate from the server. Raw figures are saved as JSON under bench/results/.

The run also measures this service's throughput on each store: in memory, SQLite,
and PostgreSQL with one replica and with three replicas at once on a fresh schema.
It fails when PostgreSQL is unreachable, unless ``--no-postgres`` skips those figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import measures
import postgres
import psycopg
import report
from httpclient import HTTPError
from servers import (
    BenchmarkError,
    DescriptorEntry,
    Server,
    ServiceSpec,
    cpu_seconds,
    ensure_baseline_venv,
    interpreter_versions,
    machine_cpu_seconds,
    running_replicas,
    running_server,
    wait_for_quiet_machine,
    write_descriptor,
)

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BASELINE_VENV = REPO / "bench" / ".venv-rentabot-1.0.0"
DEFAULT_DOCS = REPO / "docs" / "benchmarks.md"
DEFAULT_RESULTS = REPO / "bench" / "results"

CYCLE_CLIENTS = 16
LARGE_POOL = 10_000
BULK_TAG = "bulk"
LAST_TAG = "tail"
SOLO_TAG = "solo"
POOL_TAG = "pool"
POOL_SIZE = 2
POSTGRES_REPLICAS = (1, 3)


@dataclass(frozen=True, slots=True)
class Plan:
    """Durations and sample counts of one run; ``--quick`` shortens every phase."""

    warmup_seconds: float
    rounds: int
    round_seconds: float
    max_cycles_per_client: int
    fulfilment_samples: int
    expiry_samples: int
    baseline_samples: int
    baseline_cap_seconds: float
    tag_samples: int
    reservations: int
    listing_samples: int


FULL = Plan(
    warmup_seconds=2.0,
    rounds=3,
    round_seconds=5.0,
    max_cycles_per_client=1_000_000,
    fulfilment_samples=200,
    expiry_samples=100,
    baseline_samples=3,
    baseline_cap_seconds=15.0,
    tag_samples=500,
    reservations=1000,
    listing_samples=20,
)
QUICK = Plan(
    warmup_seconds=0.5,
    rounds=1,
    round_seconds=1.0,
    max_cycles_per_client=100_000,
    fulfilment_samples=20,
    expiry_samples=5,
    baseline_samples=1,
    baseline_cap_seconds=15.0,
    tag_samples=50,
    reservations=200,
    listing_samples=5,
)


def small_descriptor() -> list[DescriptorEntry]:
    """Resources for the throughput, fulfilment, expiry and listing phases."""
    entries = [
        DescriptorEntry(f"cycle-{number:02d}", "cycle", "Throughput resource")
        for number in range(1, CYCLE_CLIENTS + 1)
    ]
    entries.append(DescriptorEntry("solo", SOLO_TAG, "The only resource tagged solo"))
    entries.append(DescriptorEntry("expiry", "expiry", "Locked with ttl=1 again and again"))
    entries.extend(
        DescriptorEntry(f"pool-{number}", POOL_TAG, "Kept locked while reservations queue")
        for number in range(1, POOL_SIZE + 1)
    )
    return entries


def large_descriptor() -> list[DescriptorEntry]:
    """10,000 resources that all carry the bulk tag, plus rack and architecture tags."""
    entries = []
    for number in range(1, LARGE_POOL + 1):
        tags = [BULK_TAG, f"rack-{number % 100:02d}", "x86" if number % 2 else "arm"]
        if number == LARGE_POOL:
            tags.append(LAST_TAG)
        entries.append(
            DescriptorEntry(
                name=f"node-{number:05d}",
                tags=", ".join(tags),
                description=f"Benchmark node {number} in rack {number % 100}",
                endpoint=f"ssh://10.{number // 256 % 256}.{number % 256}.1:22",
            )
        )
    return entries


# Phases


async def measure_small(
    spec: ServiceSpec,
    descriptor: Path,
    work_dir: Path,
    plan: Plan,
    quiet: Quiet,
    is_baseline: bool,
) -> dict[str, Any]:
    """Run phases 1, 2, 3 and 5 on one server started with the small descriptor."""
    results: dict[str, Any] = {}
    async with running_server(spec, descriptor, work_dir, "small") as server:
        ids = await measures.resource_ids(server)
        cycle_ids = [ids[f"cycle-{number:02d}"] for number in range(1, CYCLE_CLIENTS + 1)]
        # Memory with a handful of resources separates start-up cost from per-resource cost.
        results["small_memory"] = await measures.measure_memory(server, len(ids))

        results["cycles"] = await measure_throughput([server], cycle_ids, plan, quiet)

        # rentabot 1.0.0 acts only on a 10-second timer, so it gets a few capped samples.
        samples = plan.baseline_samples if is_baseline else plan.fulfilment_samples
        async with quiet.phase([server], "unlock to reservation fulfilled"):
            results["fulfilment"] = await measures.measure_fulfilment(
                server,
                ids["solo"],
                SOLO_TAG,
                warmup=0 if is_baseline else 5,
                samples=samples,
                poll_interval=0.05 if is_baseline else 0.002,
                cap_seconds=plan.baseline_cap_seconds if is_baseline else 5.0,
            )

        samples = plan.baseline_samples if is_baseline else plan.expiry_samples
        async with quiet.phase([server], "expiry lateness"):
            results["expiry"] = await measures.measure_expiry(
                server,
                ids["expiry"],
                warmup=0 if is_baseline else 2,
                samples=samples,
                lead_seconds=0.05,
                retry_interval=0.002,
                cap_seconds=plan.baseline_cap_seconds if is_baseline else 5.0,
            )

        pool_ids = [ids[f"pool-{number}"] for number in range(1, POOL_SIZE + 1)]
        async with quiet.phase([server], f"listing {plan.reservations} pending reservations"):
            results["listing"] = await measures.measure_listing(
                server,
                pool_ids,
                POOL_TAG,
                plan.reservations,
                warmup=3,
                samples=plan.listing_samples,
            )
    return results


async def measure_large(
    spec: ServiceSpec, descriptor: Path, work_dir: Path, plan: Plan, quiet: Quiet
) -> dict[str, Any]:
    """Run phases 7 and 4 on one server started with the 10,000-resource descriptor."""
    results: dict[str, Any] = {}
    async with running_server(spec, descriptor, work_dir, "large") as server:
        # Resident memory does not depend on other load, so it needs no quiet phase.
        print_progress(spec, f"memory with {LARGE_POOL} resources")
        results["memory"] = await measures.measure_memory(server, LARGE_POOL)

        async with quiet.phase([server], "tag lock+unlock"):
            results["tag_lock"] = await measures.measure_tag_lock(
                server, f"tag={BULK_TAG}", warmup=20, samples=plan.tag_samples, cap_seconds=300
            )
        async with quiet.phase([server], "tag lock+unlock, last match"):
            results["tag_lock_last"] = await measures.measure_tag_lock(
                server,
                f"tag={BULK_TAG}&tag={LAST_TAG}",
                warmup=5,
                samples=max(plan.tag_samples // 5, 10),
                cap_seconds=300,
            )
    return results


async def measure_sqlite(
    spec: ServiceSpec, descriptor: Path, work_dir: Path, plan: Plan, quiet: Quiet
) -> dict[str, Any]:
    """Run phase 6, lock+unlock throughput, on a fresh SQLite file."""
    async with running_server(spec, descriptor, work_dir, "sqlite") as server:
        ids = await measures.resource_ids(server)
        cycle_ids = [ids[f"cycle-{number:02d}"] for number in range(1, CYCLE_CLIENTS + 1)]
        cycles = await measure_throughput([server], cycle_ids, plan, quiet)
    return {"cycles": cycles}


async def measure_throughput(
    servers: list[Server],
    cycle_ids: list[int],
    plan: Plan,
    quiet: Quiet,
    database: postgres.Backends | None = None,
) -> dict[str, Any]:
    """Run the lock+unlock throughput phase (figures 1, 6 and 8) on ``servers``."""
    async with quiet.phase(
        servers, "lock+unlock throughput", checks_rounds=True, database=database
    ):
        return await measures.measure_cycles(
            servers,
            cycle_ids,
            plan.warmup_seconds,
            plan.rounds,
            plan.round_seconds,
            plan.max_cycles_per_client,
            quiet.max_other_share,
            quiet.max_wait_seconds,
            quiet.settle,
            database=database,
        )


async def measure_postgres(
    spec: ServiceSpec,
    descriptor: Path,
    work_dir: Path,
    plan: Plan,
    quiet: Quiet,
    admin_url: str,
    replicas: int,
) -> dict[str, Any]:
    """Run phase 8, lock+unlock throughput, on ``replicas`` servers sharing a fresh schema.

    The schema is dropped afterwards, also when the phase fails.
    """
    with postgres.fresh_schema(admin_url) as schema:
        store_env = {"RENTABOT_PERSIST": schema.service_url}
        spec = dataclasses.replace(spec, env={**spec.env, **store_env})
        tag = f"{replicas}-replicas"
        async with running_replicas(spec, descriptor, work_dir, tag, replicas) as servers:
            ids = await same_resource_ids(servers)
            cycle_ids = [ids[f"cycle-{number:02d}"] for number in range(1, CYCLE_CLIENTS + 1)]
            with postgres.backends(admin_url, schema) as database:
                cycles = await measure_throughput(servers, cycle_ids, plan, quiet, database)
    return {"cycles": cycles, "schema": schema.name}


async def same_resource_ids(servers: list[Server]) -> dict[str, int]:
    """Return the resource ids by name, after checking that every replica lists the same."""
    first = await measures.resource_ids(servers[0])
    for server in servers[1:]:
        ids = await measures.resource_ids(server)
        if ids != first:
            raise BenchmarkError(
                f"replicas on one schema list different resources: {len(first)} on port "
                f"{servers[0].port} and {len(ids)} on port {server.port}, with names or ids "
                "that differ; see their logs"
            )
    return first


@dataclass(slots=True)
class Quiet:
    """Gate that delays each phase until other processes leave the machine nearly idle.

    Other work on a 2-core machine takes CPU from the server or the client, so each
    phase first waits, up to ``max_wait_seconds``, for a quiet second. For the report,
    ``log`` keeps the busy cores seen just before each phase and the CPU that other
    work took during it.
    """

    max_busy_cores: float
    max_wait_seconds: float
    log: list[dict[str, Any]] = field(default_factory=list)

    @property
    def max_other_share(self) -> float:
        """Maximum CPU, in cores, that other work may take during a counted throughput round.

        The 0.1-core margin over the idle limit allows for kernel work that /proc/stat
        counts as busy but charges to no process.
        """
        return self.max_busy_cores + 0.1

    async def settle(self) -> float:
        return await wait_for_quiet_machine(self.max_busy_cores, self.max_wait_seconds)

    @contextlib.asynccontextmanager
    async def phase(
        self,
        servers: list[Server],
        name: str,
        checks_rounds: bool = False,
        database: postgres.Backends | None = None,
    ) -> AsyncIterator[None]:
        """Wait for a quiet machine, run the phase, then log how busy other work kept it.

        ``servers`` are the replicas under test, and ``database`` reads the CPU time of
        the PostgreSQL backends that serve them, so neither counts as other work.
        ``checks_rounds`` marks a phase that checks other load per round itself and
        waits for quiet between rounds, so its phase-wide average is of little use.
        """
        spec = servers[0].spec
        busy = await self.settle()
        print_progress(spec, name)
        database_cpu = database.cpu_seconds() if database is not None else {}
        machine_cpu = machine_cpu_seconds()
        server_cpu = sum(cpu_seconds(server.pid) for server in servers)
        client_cpu = time.process_time()
        started = time.perf_counter()

        yield

        elapsed = time.perf_counter() - started
        ours = sum(cpu_seconds(server.pid) for server in servers) - server_cpu
        ours += time.process_time() - client_cpu
        if database is not None:
            ours += postgres.cpu_since(database_cpu, database.cpu_seconds())
        other = max(0.0, machine_cpu_seconds() - machine_cpu - ours) / elapsed
        self.log.append(
            {
                "service": spec.label,
                "phase": name,
                "busy_cores_before": busy,
                "other_cores_during": other,
                "checks_rounds": checks_rounds,
                "seconds": elapsed,
            }
        )


def print_progress(spec: ServiceSpec, phase: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {spec.label}: {phase}", flush=True)


# The run


def source_state() -> dict[str, Any]:
    """Return the commit and the uncommitted files of rentabot/ that this run measured."""

    def git(*arguments: str) -> str | None:
        # --no-optional-locks keeps git status from rewriting the index.
        command = ["git", "--no-optional-locks", "-C", str(REPO), *arguments]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        return result.stdout.strip() if result.returncode == 0 else None

    status = git("status", "--porcelain", "--", "rentabot")
    return {
        "commit": git("rev-parse", "HEAD"),
        "uncommitted": status.splitlines() if status else [],
    }


def machine_facts() -> dict[str, Any]:
    """Read the CPU model and core count from /proc/cpuinfo, and this Python's version."""
    models = []
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "model name":
            models.append(value.strip())
    return {
        "cpu_model": models[0] if models else "unknown",
        "cpu_cores": len(models),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


async def run(args: argparse.Namespace, work_dir: Path) -> dict[str, Any]:
    started = time.perf_counter()
    plan = QUICK if args.quick else FULL
    # Checked first, so an unreachable server fails the run before minutes of measuring.
    database = None if args.no_postgres else postgres.server_facts(args.postgres_url)
    baseline_python = ensure_baseline_venv(args.baseline_venv)

    current = interpreter_versions(Path(sys.executable))
    expected_package = REPO / "rentabot" / "__init__.py"
    if Path(str(current["rentabot_path"])).resolve() != expected_package:
        raise BenchmarkError(
            f"{sys.executable} imports rentabot from {current['rentabot_path']}, not from "
            f"{REPO}; run the script with the repository's .venv/bin/python after "
            "'pip install -e .'"
        )

    small, large = work_dir / "small.yaml", work_dir / "large.yaml"
    write_descriptor(small, small_descriptor())
    write_descriptor(large, large_descriptor())

    memory = ServiceSpec(
        "memory", "this service", Path(sys.executable), {"RENTABOT_LOG_LEVEL": "warning"}
    )
    sqlite_url = f"sqlite:///{work_dir / 'bench.db'}"
    sqlite = ServiceSpec(
        "sqlite",
        "this service (SQLite)",
        Path(sys.executable),
        {"RENTABOT_LOG_LEVEL": "warning", "RENTABOT_PERSIST": sqlite_url},
    )
    baseline = ServiceSpec("baseline", "rentabot 1.0.0", baseline_python)

    # One server at a time: each service with the small descriptor, then with the large one.
    quiet = Quiet(args.quiet_cores, args.quiet_wait)
    results: dict[str, dict[str, Any]] = {
        "memory": await measure_small(memory, small, work_dir, plan, quiet, is_baseline=False),
        "baseline": await measure_small(baseline, small, work_dir, plan, quiet, is_baseline=True),
    }
    results["memory"].update(await measure_large(memory, large, work_dir, plan, quiet))
    results["baseline"].update(await measure_large(baseline, large, work_dir, plan, quiet))
    results["sqlite"] = await measure_sqlite(sqlite, small, work_dir, plan, quiet)
    if database is not None:
        for replicas in POSTGRES_REPLICAS:
            spec = ServiceSpec(
                f"postgres-{replicas}",
                f"this service (PostgreSQL, {replicas} replica{'s' if replicas > 1 else ''})",
                Path(sys.executable),
                {"RENTABOT_LOG_LEVEL": "warning"},
            )
            results[spec.key] = await measure_postgres(
                spec, small, work_dir, plan, quiet, args.postgres_url, replicas
            )

    return {
        "started_at": args.started_at,
        "duration_seconds": time.perf_counter() - started,
        "quick": args.quick,
        "plan": dataclasses.asdict(plan),
        "machine": machine_facts(),
        "source": source_state(),
        "postgres": {"skipped": database is None, "server": database},
        "background": {
            "max_busy_cores": quiet.max_busy_cores,
            "max_wait_seconds": quiet.max_wait_seconds,
            "phases": quiet.log,
        },
        "versions": {
            "memory": current,
            "baseline": interpreter_versions(baseline_python),
        },
        "results": results,
    }


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Measure this rentabot against rentabot 1.0.0, one server at a time.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="shorten every phase for a smoke test; prints the table but leaves the docs alone",
    )
    parser.add_argument(
        "--baseline-venv",
        type=Path,
        default=DEFAULT_BASELINE_VENV,
        help="virtual environment containing rentabot 1.0.0; created with pip when missing "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--quiet-cores",
        type=float,
        default=0.2,
        help="before each phase, wait until other processes keep fewer than this many "
        "CPU cores busy (default: %(default)s)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=600.0,
        help="maximum wait for that, in seconds, after which the phase runs anyway and the "
        "report shows the load (default: %(default)s)",
    )
    parser.add_argument(
        "--postgres-url",
        default=postgres.DEFAULT_URL,
        help="PostgreSQL database in which each PostgreSQL measurement creates a fresh "
        "schema and drops it afterwards (default: %(default)s)",
    )
    parser.add_argument(
        "--no-postgres",
        action="store_true",
        help="skip the PostgreSQL measurements; the page then says they were skipped",
    )
    parser.add_argument(
        "--docs",
        type=Path,
        default=DEFAULT_DOCS,
        help="Markdown page that a full run rewrites (default: %(default)s)",
    )
    parser.add_argument(
        "--results-dir",
        type=Path,
        default=DEFAULT_RESULTS,
        help="folder for the raw figures as JSON (default: %(default)s)",
    )
    return parser.parse_args()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """Return a uvloop loop when installed: it costs the client less CPU per request."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main() -> int:
    args = parse_arguments()
    args.started_at = datetime.now(UTC).isoformat(timespec="seconds")
    work_dir = Path(tempfile.mkdtemp(prefix="rentabot-bench-"))
    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            record = runner.run(run(args, work_dir))
    except (BenchmarkError, HTTPError, psycopg.Error) as error:
        print(f"Benchmark failed: {error}", file=sys.stderr)
        if any(work_dir.iterdir()):
            print(f"Server logs are kept in {work_dir}", file=sys.stderr)
        else:
            work_dir.rmdir()
        return 1

    record["rows"] = report.rows(record)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = args.started_at.replace(":", "").replace("-", "").replace("+0000", "Z")
    json_path = args.results_dir / f"{stamp}{'-quick' if args.quick else ''}.json"
    json_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")

    print()
    print(report.console_table(record["rows"]))
    print()
    print(report.text_table(report.STORE_HEADERS, report.store_rows(record)))
    warnings = report.busy_warnings(record)
    if warnings:
        print("\nTaken while other work exceeded the limits (see the JSON for figures):")
        for warning in warnings:
            print(f"  {warning}")
    print(f"\nRaw figures: {json_path}")
    if args.quick:
        print(f"Quick run: {args.docs} was left unchanged.")
    else:
        args.docs.write_text(report.markdown(record), encoding="utf-8")
        print(f"Wrote {args.docs}")

    shutil.rmtree(work_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
