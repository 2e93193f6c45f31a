"""Commands that manage a store: migrate it, export and import the descriptor, back up, restore.

Each command works on a store directly (``--persist URL``) or on a running service
(``--url``), which is the only way to reach an in-memory store.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlencode

import click
import httpx
from sqlalchemy import create_engine

from rentabot.clock import SystemClock, storable_instant, utc_now
from rentabot.config.descriptor import DescriptorError, dump_descriptor, load_descriptor
from rentabot.domain.audit import AuditQuery
from rentabot.domain.commands import ResourceSpec
from rentabot.domain.limits import Limits
from rentabot.service import LockService
from rentabot.storage.base import Store, StoreUnavailable
from rentabot.storage.factory import StoreURLError, check_store_url, open_store, sqlite_path
from rentabot.storage.snapshot import Snapshot, SnapshotError
from rentabot.storage.sql import migrate
from rentabot.storage.sql.postgres import normalise_url

T = TypeVar("T")

HTTP_TIMEOUT = 60.0

persist_option = click.option(
    "--persist",
    metavar="URL",
    envvar="RENTABOT_PERSIST",
    help="The store to use directly: sqlite:///path/rentabot.db or postgresql://...",
)
url_option = click.option(
    "--url",
    metavar="URL",
    envvar="RENTABOT_URL",
    help="A running rentabot service, for example http://127.0.0.1:8000 (needed for the "
    "in-memory store).",
)
api_key_option = click.option(
    "--api-key",
    metavar="KEY",
    envvar="RENTABOT_API_KEY",
    help="Admin key sent as X-API-Key when the service has authentication on.",
)


class CommandError(click.ClickException):
    """A failure the user can fix; printed as one line, exit status 1."""


def fail(message: str) -> CommandError:
    return CommandError(message)


def one_target(persist: str | None, url: str | None) -> None:
    if bool(persist) == bool(url):
        raise click.UsageError("give exactly one of --persist (a store) or --url (a service)")


def run_on_store(
    persist: str, action: Callable[[Store], Awaitable[T]], read_only: bool = False
) -> T:
    """Open the store, run ``action`` on it, and close it again.

    With ``read_only`` a SQLite file must exist already. Opening a mistyped path would
    create an empty store, and the command would report it as empty instead of failing.
    """
    try:
        kind = check_store_url(persist)
    except StoreURLError as error:
        raise fail(str(error)) from None
    if kind == "memory":
        raise fail(
            "the in-memory store lives inside the running service; use --url "
            "http://HOST:PORT to reach it"
        )
    if read_only and kind == "sqlite":
        require_database_file(persist)

    async def run() -> T:
        store = open_store(persist)
        await store.start()
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except StoreUnavailable as error:
        hint = " (use --url to go through the running service)" if "another" in str(error) else ""
        raise fail(f"{error}{hint}") from None


def require_database_file(persist: str) -> None:
    path = sqlite_path(persist)
    if path is None or path.is_file():
        return
    raise fail(
        f"--persist {persist}: no SQLite database at {path}; check the path, or create "
        "the store first by starting the service on it or running rentabot db upgrade"
    )


def call_service(
    url: str,
    api_key: str | None,
    method: str,
    path: str,
    content: bytes | None = None,
    content_type: str = "application/json",
) -> httpx.Response:
    headers = {"content-type": content_type}
    if api_key:
        headers["X-API-Key"] = api_key
    try:
        response = httpx.request(
            method, url.rstrip("/") + path, content=content, headers=headers, timeout=HTTP_TIMEOUT
        )
    except httpx.HTTPError as error:
        raise fail(f"cannot reach {url}: {error}") from None
    if response.status_code >= 400:
        try:
            message = response.json().get("message", response.text)
        except ValueError:
            message = response.text
        raise fail(f"{method} {path} failed with {response.status_code}: {message}")
    return response


def service_on(store: Store) -> LockService:
    return LockService(store, store.default_clock() or SystemClock(), Limits())


@click.group()
def db() -> None:
    """Manage the database schema of a SQLite or PostgreSQL store."""


@db.command("upgrade")
@click.option(
    "--persist",
    metavar="URL",
    envvar="RENTABOT_PERSIST",
    required=True,
    help="The store to migrate: sqlite:///path/rentabot.db or postgresql://...",
)
def db_upgrade(persist: str) -> None:
    """Apply the schema migrations (the service also does this when it starts)."""
    try:
        kind = check_store_url(persist)
    except StoreURLError as error:
        raise fail(str(error)) from None
    if kind == "memory":
        raise fail("the in-memory store has no schema to migrate; give a database URL")
    path = sqlite_path(persist) if kind == "sqlite" else None
    if path is not None:
        # As the service does on start-up, so a new store can be made with this command.
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(normalise_url(persist))
    try:
        with engine.connect() as connection:
            before = migrate.current_revision(connection)
        migrate.upgrade(engine)
    except Exception as error:
        raise fail(f"migration failed: {error}") from None
    finally:
        engine.dispose()
    click.echo(f"schema at revision {migrate.head_revision()} (was {before or 'empty'})")


@click.command("export")
@persist_option
@url_option
@api_key_option
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the descriptor here instead of to standard output.",
)
def export_command(
    persist: str | None, url: str | None, api_key: str | None, output: Path | None
) -> None:
    """Write the resources as a descriptor (YAML) that --config and import accept."""
    one_target(persist, url)
    if persist:
        snapshot = run_on_store(persist, lambda store: store.snapshot(), read_only=True)
        specs = [
            ResourceSpec(r.name, r.description, r.endpoint, r.tags_text, r.max_lock_duration)
            for r in snapshot.resources
            if not r.retired
        ]
    else:
        assert url is not None
        listed = call_service(url, api_key, "GET", "/api/v1/resources").json()["resources"]
        specs = [
            ResourceSpec(
                r["name"], r["description"], r["endpoint"], r["tags"], r["max-lock-duration"]
            )
            for r in listed
        ]
    write_text(dump_descriptor(specs), output)


@click.command("import")
@click.argument("descriptor", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@persist_option
@url_option
@api_key_option
def import_command(
    descriptor: Path, persist: str | None, url: str | None, api_key: str | None
) -> None:
    """Make the store's resources match DESCRIPTOR, by name, as the service does at start-up.

    New names are added, changed fields updated, and resources no longer declared are
    removed (once unlocked, if locked). Ids follow names, so they do not change.
    """
    one_target(persist, url)
    try:
        specs = load_descriptor(descriptor).resources
    except DescriptorError as error:
        raise fail(str(error)) from None

    if persist:
        counts = run_on_store(persist, lambda store: service_on(store).sync_resources(specs))
    else:
        assert url is not None
        counts = call_service(
            url,
            api_key,
            "PUT",
            "/api/v1/admin/resources",
            descriptor.read_bytes(),
            "application/yaml",
        ).json()
    click.echo(
        f"added {counts['added']}, updated {counts['updated']}, removed {counts['removed']}, "
        f"retired until unlocked {counts['retired']}"
    )


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@persist_option
@url_option
@api_key_option
def backup_command(file: Path, persist: str | None, url: str | None, api_key: str | None) -> None:
    """Save the whole state (resources, locks, reservations) to FILE as JSON.

    The snapshot restores into any store kind with ``rentabot restore``.
    """
    one_target(persist, url)
    if persist:
        snapshot = run_on_store(persist, lambda store: store.snapshot(), read_only=True)
        text = snapshot.to_json(utc_now())
    else:
        assert url is not None
        text = call_service(url, api_key, "GET", "/api/v1/admin/snapshot").text
        try:
            snapshot = Snapshot.from_json(text, url)
        except SnapshotError as error:
            raise fail(str(error)) from None
    write_text(text, file)
    click.echo(
        f"saved {len(snapshot.resources)} resources and {len(snapshot.reservations)} "
        f"reservations to {file}"
    )


@click.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@persist_option
@url_option
@api_key_option
def restore_command(file: Path, persist: str | None, url: str | None, api_key: str | None) -> None:
    """Replace the whole state of a store or service by the snapshot in FILE."""
    one_target(persist, url)
    text = file.read_text(encoding="utf-8")
    try:
        snapshot = Snapshot.from_json(text, str(file))
    except SnapshotError as error:
        raise fail(str(error)) from None

    if persist:
        run_on_store(persist, lambda store: service_on(store).restore(snapshot))
    else:
        assert url is not None
        call_service(url, api_key, "PUT", "/api/v1/admin/snapshot", text.encode("utf-8"))
    click.echo(
        f"restored {len(snapshot.resources)} resources and {len(snapshot.reservations)} "
        "reservations"
    )


def write_text(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise fail(f"cannot write {output}: {error}") from None


def storable_option(
    _context: click.Context, _parameter: click.Parameter, value: datetime | None
) -> datetime | None:
    """Reject an instant the stores cannot keep, as the API does."""
    if value is None:
        return None
    try:
        return storable_instant(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@click.command("audit")
@persist_option
@url_option
@api_key_option
@click.option("--resource-id", type=int, help="Only entries about this resource.")
@click.option("--reservation-id", help="Only entries about this reservation.")
@click.option("--token-name", help="Only entries made with this token.")
@click.option(
    "--operation", help="Only this operation, e.g. 'POST /api/v1/resources/{resource_id}/lock'."
)
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%z"]),
    callback=storable_option,
    help="Only entries at or after this time, with a UTC offset.",
)
@click.option(
    "--limit",
    type=click.IntRange(1, 1000),
    default=50,
    show_default=True,
    help="How many entries to print, newest first.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def audit_command(
    persist: str | None,
    url: str | None,
    api_key: str | None,
    resource_id: int | None,
    reservation_id: str | None,
    token_name: str | None,
    operation: str | None,
    since: datetime | None,
    limit: int,
    as_json: bool,
) -> None:
    """Print the audit log, newest first: who changed what, when, and the outcome."""
    one_target(persist, url)
    query = AuditQuery(
        resource_id=resource_id,
        reservation_id=reservation_id,
        token_name=token_name,
        operation=operation,
        since=since,
        limit=limit,
    )
    if persist:
        entries = [
            entry.to_dict()
            for entry in run_on_store(
                persist, lambda store: store.audit_log(query), read_only=True
            )[0]
        ]
    else:
        assert url is not None
        parameters = {
            key: value
            for key, value in {
                "resource_id": resource_id,
                "reservation_id": reservation_id,
                "token_name": token_name,
                "operation": operation,
                "since": since.isoformat() if since else None,
                "limit": limit,
            }.items()
            if value is not None
        }
        path = "/api/v1/audit?" + urlencode(parameters)
        entries = call_service(url, api_key, "GET", path).json()["entries"]

    if as_json:
        for entry in entries:
            click.echo(json.dumps(entry))
        return
    for entry in entries:
        target = entry["resource_id"] or entry["reservation_id"] or "-"
        who = entry["token_name"] or entry["role"]
        status = entry["status"] if entry["status"] is not None else "-"
        click.echo(
            f"{entry['at']}  {status}  {entry['outcome']:<24} {who:<16} "
            f"{entry['ip'] or '-':<15} {target!s:<10} {entry['operation']}"
        )
