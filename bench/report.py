"""Turn a run's raw figures into the comparison rows, the console table and docs/benchmarks.md."""

from __future__ import annotations

from typing import Any

# Ratios are always this service divided by rentabot 1.0.0.
HEADERS = ["metric", "this service", "rentabot 1.0.0", "ratio", "target", "met"]
# Ratios in the stores table are each store's rate divided by the in-memory rate.
STORE_HEADERS = ["store", "replicas", "lock+unlock cycles/s", "ratio to in-memory"]
# Keys of record["results"], in the order of the stores table, with their store names.
STORES = [
    ("memory", "in memory", 1),
    ("sqlite", "SQLite", 1),
    ("postgres-1", "PostgreSQL", 1),
    ("postgres-3", "PostgreSQL", 3),
]
SERVICE_LABELS = {
    "memory": "this service",
    "sqlite": "this service (SQLite)",
    "postgres-1": "this service (PostgreSQL, 1 replica)",
    "postgres-3": "this service (PostgreSQL, 3 replicas)",
    "baseline": "rentabot 1.0.0",
}


def rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Build one row per figure, with the target from the acceptance list where there is one."""
    memory = record["results"]["memory"]
    baseline = record["results"]["baseline"]
    sqlite = record["results"]["sqlite"]
    plan = record["plan"]
    built = []

    this_rate = memory["cycles"]["cycles_per_second"]
    old_rate = baseline["cycles"]["cycles_per_second"]
    built.append(
        row(
            f"lock+unlock cycles/s, {memory['cycles']['clients']} clients, in-memory",
            rate_text(this_rate),
            rate_text(old_rate),
            this_rate / old_rate,
            ">= 1.5x 1.0.0",
            this_rate >= 1.5 * old_rate,
        )
    )

    built.append(
        context_latency_row(
            "unlock -> reservation fulfilled, p99 ms", memory["fulfilment"], baseline["fulfilment"]
        )
    )
    built.append(
        context_latency_row("expiry lateness, p99 ms", memory["expiry"], baseline["expiry"])
    )

    for statistic, target in (("p50", 5.0), ("p99", None)):
        this_ms = memory["tag_lock"]["lock_and_unlock_ms"][statistic]
        old_ms = baseline["tag_lock"]["lock_and_unlock_ms"][statistic]
        built.append(
            row(
                f"tag lock+unlock among 10,000, {statistic} ms",
                ms_text(this_ms),
                ms_text(old_ms),
                this_ms / old_ms,
                f"{statistic} < {target:g} ms" if target is not None else "",
                this_ms < target if target is not None else None,
            )
        )
    this_ms = memory["tag_lock_last"]["lock_and_unlock_ms"]["p50"]
    old_ms = baseline["tag_lock_last"]["lock_and_unlock_ms"]["p50"]
    built.append(
        row(
            "tag lock+unlock, only match is the 10,000th, p50 ms",
            ms_text(this_ms),
            ms_text(old_ms),
            this_ms / old_ms,
            "",
            None,
        )
    )

    this_ms = memory["listing"]["median_ms"]
    old_ms = baseline["listing"]["median_ms"]
    built.append(
        row(
            f"GET /api/v1/reservations, {plan['reservations']:,} pending, median ms",
            ms_text(this_ms),
            ms_text(old_ms),
            this_ms / old_ms,
            "< 50 ms",
            this_ms < 50,
        )
    )

    sqlite_rate = sqlite["cycles"]["cycles_per_second"]
    built.append(
        row(
            "lock+unlock cycles/s, SQLite store (1.0.0: in-memory)",
            rate_text(sqlite_rate),
            rate_text(old_rate),
            sqlite_rate / old_rate,
            f">= 0.5x in-memory (here {sqlite_rate / this_rate:.2f}x)",
            sqlite_rate >= 0.5 * this_rate,
        )
    )

    this_mib = memory["memory"]["rss_mib"]
    old_mib = baseline["memory"]["rss_mib"]
    built.append(
        row(
            "resident memory, 10,000 resources, MiB",
            f"{this_mib:.1f}",
            f"{old_mib:.1f}",
            this_mib / old_mib,
            "<= 1.0.0",
            this_mib <= old_mib,
        )
    )
    this_mib = memory["small_memory"]["rss_mib"]
    old_mib = baseline["small_memory"]["rss_mib"]
    built.append(
        row(
            f"resident memory, {memory['small_memory']['resources']} resources, MiB",
            f"{this_mib:.1f}",
            f"{old_mib:.1f}",
            this_mib / old_mib,
            "",
            None,
        )
    )
    return built


def store_rows(record: dict[str, Any]) -> list[list[str]]:
    """Build the stores table: this service's lock+unlock rate on each store."""
    results = record["results"]
    memory_rate = results["memory"]["cycles"]["cycles_per_second"]
    built = []
    for key, store, replicas in STORES:
        if key not in results:
            built.append([store, str(replicas), "skipped (--no-postgres)", "-"])
            continue
        rate = results[key]["cycles"]["cycles_per_second"]
        built.append([store, str(replicas), rate_text(rate), ratio_text(rate / memory_rate)])
    return built


def row(
    metric: str, this: str, old: str, ratio: float | None, target: str, met: bool | None
) -> dict[str, Any]:
    return {
        "metric": metric,
        "this": this,
        "baseline": old,
        "ratio": ratio,
        "target": target,
        "met": met,
    }


def context_latency_row(metric: str, this: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """Compare this service's p99 with the worst of rentabot 1.0.0's few capped samples."""
    this_p99 = this["summary_ms"].get("p99")
    this_text = ms_text(this_p99) if this_p99 is not None else "no samples"
    if this["timeouts"]:
        this_text += f" ({this['timeouts']} timed out)"

    old_max = old["summary_ms"].get("max")
    count = old["summary_ms"]["count"]
    if old["timeouts"]:
        old_text = f"> {old['cap_seconds']:g} s (timed out)"
    else:
        old_text = f"{ms_text(old_max)} (max of {count})"
    ratio = this_p99 / old_max if this_p99 is not None and old_max else None
    met = this_p99 is not None and this_p99 < 50 and not this["timeouts"]
    return row(metric, this_text, old_text, ratio, "p99 < 50 ms", met)


def rate_text(value: float) -> str:
    return f"{value:,.0f}"


def ms_text(value: float) -> str:
    if value < 10:
        return f"{value:.2f}"
    if value < 100:
        return f"{value:.1f}"
    return f"{value:,.0f}"


def ratio_text(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}x" if value >= 0.1 else f"{value:.2g}x"


def met_text(value: bool | None) -> str:
    if value is None:
        return "-"
    return "yes" if value else "no"


def cells(entry: dict[str, Any]) -> list[str]:
    return [
        entry["metric"],
        entry["this"],
        entry["baseline"],
        ratio_text(entry["ratio"]),
        entry["target"] or "-",
        met_text(entry["met"]),
    ]


def console_table(entries: list[dict[str, Any]]) -> str:
    return text_table(HEADERS, [cells(entry) for entry in entries])


def text_table(headers: list[str], lines: list[list[str]]) -> str:
    """Return ``lines`` as plain-text columns padded to the widest cell."""
    table = [headers, *lines]
    widths = [max(len(line[column]) for line in table) for column in range(len(headers))]
    rendered = []
    for index, line in enumerate(table):
        rendered.append(
            "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True))
        )
        if index == 0:
            rendered.append("  ".join("-" * width for width in widths))
    return "\n".join(rendered)


def markdown_table(headers: list[str], lines: list[list[str]]) -> str:
    rendered = [
        "| " + " | ".join(headers) + " |",
        "|" + "---|" * len(headers),
    ]
    for line in lines:
        rendered.append("| " + " | ".join(line) + " |")
    return "\n".join(rendered)


INTRO = """\
# Benchmarks

This page compares this rentabot with rentabot 1.0.0 from PyPI on the paths CI
pipelines use most. It measures lock and unlock throughput, how soon a waiting
reservation is served and an expired lock is released, locking by tag among many
resources, listing a long queue, and memory. It also compares this service's
throughput on each store, with one and with three replicas on PostgreSQL.
`bench/run.py` writes this whole page, so rerun it to refresh the figures instead
of editing them.

**Machine.** {cpu_model}, {cpu_cores} cores as listed in /proc/cpuinfo, Linux
{kernel}, Python {python}. The run started {started_at} and measured {source}.

**Reproduce.** From the repository root, with the development environment
installed (`.venv`): `.venv/bin/python bench/run.py`. The first run creates
`bench/.venv-rentabot-1.0.0` with `pip install rentabot==1.0.0`. This run took
{minutes:.0f} min, including waits for other processes to settle. `--quick`
shortens every phase for a smoke test and leaves this page unchanged.

**Method.** Both servers ran the same way, one at a time (except the three
replicas of figure 8):
`<python> -m uvicorn rentabot.main:app --host 127.0.0.1 --port P --log-level warning
--no-access-log`, with `RENTABOT_RESOURCE_DESCRIPTOR` set to a descriptor the script
writes and a scratch working directory. The client ran in a separate process (the
script itself). It is a small asyncio HTTP/1.1 client that keeps its connections open
and reads responses straight from the socket, so it spends little CPU per request. The
throughput rounds record the CPU share of the server and of the client, to show
which side was the bottleneck. The ratio column is this service divided by rentabot
1.0.0: above 1 is better for rates, below 1 is better for times and memory.
"""

METHOD = """\
## How each figure is measured

1. **Lock+unlock cycles.** {clients} clients, each on its own keep-alive connection,
   lock their own resource by id (`POST /api/v1/resources/{{id}}/lock` with
   `{{"ttl": 60}}`), then unlock it with the returned token. A {warmup:g} s warm-up,
   then {rounds} rounds of {round_seconds:g} s; the table shows the median round.
2. **Unlock to reservation fulfilled.** One resource is the only one with tag
   `solo`. While it is locked, a reservation for `solo` is queued. The clock starts
   just before the unlock is sent and stops when a `GET` of the reservation returns
   `fulfilled`. The reservation is then claimed, and its lock token is what the next
   sample unlocks. This service: {fulfilment_samples} samples after 5 warm-up ones,
   polling every 2 ms. rentabot 1.0.0 matches its queue every 10 s, so it gets
   {baseline_samples} samples polled every 50 ms with a {cap:g} s cap, as context.
3. **Expiry lateness.** Lock with `ttl` 1 and read `expires-at`. From 50 ms before
   that instant, try to lock again every 2 ms. Lateness is the time of the first
   successful response minus `expires-at`; that lock starts the next sample. Server and
   client read the same system clock. This service: {expiry_samples} samples after 2
   warm-up ones. rentabot 1.0.0 releases expired locks every 10 s: {baseline_samples}
   samples with a {cap:g} s cap, as context.
4. **Tag lock among 10,000.** The server loads 10,000 resources that all carry tag
   `bulk`, with rack and architecture tags too. `POST /api/v1/resources/lock?tag=bulk`
   then the unlock, one pair at a time: {tag_samples} pairs after 20 warm-up ones.
   The first free match is the first resource. A second series requests
   `tag=bulk&tag=tail`, which only the last resource carries.
5. **Listing the queue.** Both resources tagged `pool` are locked, then
   {reservations:,} reservations for `pool` are queued and stay pending. The figure
   is the median of {listing_samples} `GET /api/v1/reservations` after 3 warm-up
   ones. The listing also contains the claimed reservations left by figure 2 (see the
   counts below).
6. **SQLite store.** As figure 1, with `RENTABOT_PERSIST=sqlite:///...` on a fresh
   file in a temporary folder.
7. **Resident memory.** VmRSS from /proc/PID/status of the server that loaded the
   10,000-resource descriptor, read 0.5 s after one `GET /api/v1/resources`.
8. **Stores and replicas.** As figure 1, for this service only. The in-memory and
   SQLite rates are figures 1 and 6. Each PostgreSQL measurement creates a fresh
   schema `rentabot_bench_<random>` in the database named under "Stores and
   replicas" and drops it afterwards.
   The service gets
   `RENTABOT_PERSIST=postgresql://...?options=-csearch_path%3D<schema>&application_name=<schema>`.
   One replica is one server. Three replicas are three servers started at once on
   the same schema, which they migrate in turn under an advisory lock. The
   {clients} client connections go to their three ports round-robin, so the client
   balances the load and no proxy is involved. The server CPU share is the sum over
   the replicas. The database CPU share is that of the PostgreSQL backends whose
   `application_name` is the schema, read from /proc. PostgreSQL's background
   processes (WAL writer, checkpointer) count as other work. Every write transaction
   takes one advisory lock shared by all replicas, so transactions run one at a time.
   The changes that queue up in a replica share its next transaction (group commit),
   and every replica reads the events of each transaction back from the database
   after its `NOTIFY`. {replica_caveat}{postgres_note}

Percentiles are nearest-rank: p99 is the smallest sample with 99% of samples at or
below it.
"""


def markdown(record: dict[str, Any]) -> str:
    """Return docs/benchmarks.md for ``record``."""
    plan = record["plan"]
    machine = record["machine"]
    parts = [
        INTRO.format(
            minutes=record["duration_seconds"] / 60,
            started_at=record["started_at"],
            source=source_text(record["source"]),
            **machine,
        ),
        "## Results\n\n"
        + markdown_table(HEADERS, [cells(entry) for entry in record["rows"]])
        + "\n",
        stores_section(record),
        METHOD.format(
            replica_caveat=replica_caveat(machine["cpu_cores"]),
            postgres_note=(
                " This run skipped the PostgreSQL measurements (`--no-postgres`)."
                if record["postgres"]["skipped"]
                else ""
            ),
            clients=record["results"]["memory"]["cycles"]["clients"],
            warmup=plan["warmup_seconds"],
            rounds=plan["rounds"],
            round_seconds=plan["round_seconds"],
            fulfilment_samples=plan["fulfilment_samples"],
            baseline_samples=plan["baseline_samples"],
            cap=plan["baseline_cap_seconds"],
            expiry_samples=plan["expiry_samples"],
            tag_samples=plan["tag_samples"],
            reservations=plan["reservations"],
            listing_samples=plan["listing_samples"],
        ),
        details(record),
    ]
    return "\n".join(parts)


def replica_caveat(cores: int) -> str:
    """Describe what the three-replica figure can show on a machine with ``cores`` cores."""
    # An estimate: three replicas, the PostgreSQL backends and the client need about five
    # cores before a third replica can add throughput instead of taking CPU from the others.
    if cores < 5:
        return (
            f"Here the three replicas, PostgreSQL and the client share {cores} cores, so "
            "the three-replica figure measures the cost of coordinating replicas, not "
            "scaling."
        )
    return (
        f"Here the three replicas, PostgreSQL and the client have {cores} cores, but the "
        "shared write lock still limits how far throughput can grow with replicas."
    )


STORES_INTRO = """\
## Stores and replicas

This service's lock+unlock throughput on each store, measured in the same run as
the results above, as figure 8 below describes. There is no target for these
figures. The ratio is each rate divided by the in-memory rate. {caveat}
"""


def stores_section(record: dict[str, Any]) -> str:
    parts = [
        STORES_INTRO.format(caveat=replica_caveat(record["machine"]["cpu_cores"])),
        markdown_table(STORE_HEADERS, store_rows(record)),
        "",
    ]
    database = record["postgres"]
    if database["skipped"]:
        parts.append(
            "The PostgreSQL measurements were skipped: the run was started with `--no-postgres`.\n"
        )
    else:
        server = database["server"]
        parts.append(
            f"PostgreSQL {server['server_version']} at {server['host']}:{server['port']}, "
            f"database `{server['dbname']}`, on this machine, with `fsync` "
            f"{server['fsync']} and `synchronous_commit` {server['synchronous_commit']}.\n"
        )
    return "\n".join(parts)


def details(record: dict[str, Any]) -> str:
    results = record["results"]
    services = [
        (SERVICE_LABELS[key], results[key])
        for key in ("memory", "sqlite", "postgres-1", "postgres-3", "baseline")
        if key in results
    ]
    lines = ["## Details of this run", "", "**Software.**", ""]
    lines.append("| | " + " | ".join(("this service", "rentabot 1.0.0")) + " |")
    lines.append("|---|---|---|")
    this_versions = record["versions"]["memory"]["packages"]
    old_versions = record["versions"]["baseline"]["packages"]
    for name in this_versions:
        lines.append(f"| {name} | {this_versions[name]} | {old_versions.get(name)} |")
    lines.append(
        f"| Python | {record['versions']['memory']['python']} | "
        f"{record['versions']['baseline']['python']} |"
    )

    lines += [
        "",
        "**Throughput rounds**, in cycles/s, each with the CPU share of the server (all "
        "replicas together), of the PostgreSQL backends serving it where there are any, of "
        "the client and of everything else on the machine (1.00 is one core busy for the "
        "whole round):",
        "",
    ]
    for label, result in services:
        rounds = result["cycles"]["rounds"]
        figures = ", ".join(
            f"{entry['cycles_per_second']:,.0f} ({shares_text(entry)})" for entry in rounds
        )
        by_rate = sorted(rounds, key=lambda entry: entry["cycles_per_second"])
        latency = by_rate[len(by_rate) // 2]["cycle_latency_ms"]
        line = (
            f"- {label}: {figures}; in the median round, cycle latency p50 "
            f"{ms_text(latency['p50'])} ms, p99 {ms_text(latency['p99'])} ms."
        )
        set_aside = result["cycles"]["set_aside_rounds"]
        if set_aside:
            line += " Set aside because other work took more than " + (
                f"{result['cycles']['max_other_share']:.2f} of a core: "
                + ", ".join(
                    f"{entry['cycles_per_second']:,.0f} (other {entry['other_cpu_share']:.2f})"
                    for entry in set_aside
                )
                + "."
            )
        lines.append(line)

    memory, baseline = results["memory"], results["baseline"]
    fulfilment = memory["fulfilment"]
    lines += [
        "",
        "**Samples.**",
        "",
        f"- Fulfilment, this service: {fulfilment['summary_ms']['count']} samples, "
        f"p50 {ms_text(fulfilment['summary_ms']['p50'])} ms, max "
        f"{ms_text(fulfilment['summary_ms']['max'])} ms; the first GET after the unlock "
        f"already showed `fulfilled` in {fulfilment['first_get_fulfilled']} of them.",
        f"- Fulfilment, rentabot 1.0.0: {samples_text(baseline['fulfilment'])}.",
        f"- Expiry, this service: {memory['expiry']['summary_ms']['count']} samples, "
        f"p50 {ms_text(memory['expiry']['summary_ms']['p50'])} ms, max "
        f"{ms_text(memory['expiry']['summary_ms']['max'])} ms; new locks whose `locked-at` "
        f"is before the old `expires-at`: {memory['expiry']['locked_before_old_expiry']}.",
        f"- Expiry, rentabot 1.0.0: {samples_text(baseline['expiry'])}; new locks whose "
        f"`locked-at` is before the old `expires-at`: "
        f"{baseline['expiry']['locked_before_old_expiry']}.",
    ]
    for label, result in (("this service", memory), ("rentabot 1.0.0", baseline)):
        listing = result["listing"]
        tag = result["tag_lock"]
        lines.append(
            f"- {label}: listing returned {listing['listed']} reservations, "
            f"{listing['pending']} of them pending; tag lock alone p50 "
            f"{ms_text(tag['lock_only_ms']['p50'])} ms; start-up with 10,000 resources "
            f"{result['memory']['startup_seconds']:.1f} s; peak RSS "
            f"{result['memory']['peak_rss_mib']:.1f} MiB."
        )

    lines += ["", background_text(record), ""]
    lines += [
        "rentabot 1.0.0 logs every lock and unlock at INFO level to standard output, "
        "regardless of `--log-level`, because its `rentabot/logger.py` calls "
        "`logging.basicConfig(level=logging.INFO)` on import. The script sends that "
        "output to a file; its cost is part of 1.0.0's figures.",
        "",
    ]
    return "\n".join(lines)


def shares_text(entry: dict[str, Any]) -> str:
    """Return the CPU shares of one throughput round, database included when measured."""
    shares = [f"server {entry['server_cpu_share']:.2f}"]
    if "database_cpu_share" in entry:
        shares.append(f"database {entry['database_cpu_share']:.2f}")
    shares.append(f"client {entry['client_cpu_share']:.2f}")
    shares.append(f"other {entry['other_cpu_share']:.2f}")
    return ", ".join(shares)


def samples_text(result: dict[str, Any]) -> str:
    values = ", ".join(f"{value:,.0f} ms" for value in result["samples_ms"]) or "none"
    interval = result.get("poll_interval_ms", result.get("retry_interval_ms"))
    text = f"{values} (requests every {interval:g} ms"
    if result["timeouts"]:
        text += f"; {result['timeouts']} timed out after {result['cap_seconds']:g} s"
    return text + ")"


def busy_warnings(record: dict[str, Any]) -> list[str]:
    """List the phases and throughput rounds that ran while other work was over the limits."""
    background = record["background"]
    limit = background["max_busy_cores"]
    max_other = record["results"]["memory"]["cycles"]["max_other_share"]
    warnings = []
    for entry in background["phases"]:
        where = f"{entry['service']}, {entry['phase']}"
        if entry["busy_cores_before"] >= limit:
            warnings.append(
                f"{where}: started after the wait ran out, with other work on "
                f"{entry['busy_cores_before']:.2f} cores"
            )
        if entry["other_cores_during"] > max_other and not entry["checks_rounds"]:
            warnings.append(
                f"{where}: other work took {entry['other_cores_during']:.2f} cores on average"
            )

    for key, result in record["results"].items():
        busy_rounds = [
            entry for entry in result["cycles"]["rounds"] if entry["other_cpu_share"] > max_other
        ]
        if busy_rounds:
            shares = ", ".join(f"{entry['other_cpu_share']:.2f}" for entry in busy_rounds)
            count = f"{len(busy_rounds)} counted round{'s' if len(busy_rounds) > 1 else ''}"
            warnings.append(
                f"{SERVICE_LABELS[key]}, lock+unlock throughput: "
                f"{count} had other work on {shares} cores"
            )
    return warnings


def background_text(record: dict[str, Any]) -> str:
    """Describe how the run kept other load out of the figures, and where it could not."""
    background = record["background"]
    wait = background["max_wait_seconds"]
    max_other = record["results"]["memory"]["cycles"]["max_other_share"]
    lines = [
        f"**Other load.** Each phase waited, up to {wait:.0f} s, until other processes kept "
        f"fewer than {background['max_busy_cores']:g} cores busy. A throughput round during "
        f"which other work took more than {max_other:.2f} of a core was set aside and run "
        f"again, for up to {wait:.0f} s per figure. Other work is everything besides the "
        "servers, the client and, for the PostgreSQL figures, the backends serving them. "
        "It includes kernel work charged to no process and PostgreSQL's background processes.",
        "",
    ]
    warnings = busy_warnings(record)
    if warnings:
        lines.append("These figures were taken while other work exceeded those limits:")
        lines.append("")
        lines += [f"- {warning}." for warning in warnings]
    else:
        lines.append("Other work stayed within those limits for every figure.")

    lines += [
        "",
        "| phase | seconds | busy cores before | other cores during |",
        "|---|---|---|---|",
    ]
    for entry in background["phases"]:
        lines.append(
            f"| {entry['service']}: {entry['phase']} | {entry['seconds']:.0f} | "
            f"{entry['busy_cores_before']:.2f} | {entry['other_cores_during']:.2f} |"
        )
    return "\n".join(lines)


def source_text(source: dict[str, Any]) -> str:
    commit = (source["commit"] or "an unknown commit")[:12]
    changed = len(source["uncommitted"])
    if not changed:
        return f"commit {commit}"
    return f"commit {commit} with uncommitted changes in {changed} files under rentabot/"
