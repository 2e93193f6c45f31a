"""Backup/restore and export/import between every pair of store kinds keep the state whole.

Each side runs a real service on a manual clock that starts at the real time, so the
commands (which use the real clock) see no deadline pass. The commands reach the
in-memory store through its service (--url), and the others directly (--persist).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from rentabot.cli.main import main
from rentabot.clock import ManualClock, utc_now
from rentabot.config.settings import Settings
from tests.support.postgres import fresh_schema
from tests.support.servers import LAB_DESCRIPTOR, in_process_server

KINDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@contextmanager
def store_of(kind: str, folder: Path) -> Iterator[str | None]:
    """Yield the --persist URL of a fresh store of ``kind`` (None for memory)."""
    if kind == "memory":
        yield None
    elif kind == "sqlite":
        folder.mkdir(parents=True, exist_ok=True)
        yield f"sqlite:///{folder / 'rentabot.db'}"
    else:
        with fresh_schema() as url:
            yield url


def run_command(*arguments: str) -> str:
    result = CliRunner().invoke(main, list(arguments), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def populate(base_url: str) -> None:
    """Locks with holders, a claimed, a fulfilled and a pending reservation, ended ones."""
    with httpx.Client(base_url=base_url) as client:
        client.post("/api/v1/resources/1/lock", json={"ttl": 3600, "locked_by_label": "job-1"})
        token = client.post("/api/v1/resources/2/lock", json={"ttl": 1800}).json()["lock-token"]
        client.post("/api/v1/resources/2/unlock", params={"lock-token": token})
        claimed = client.post(
            "/api/v1/reservations", json={"tags": ["matlab"], "quantity": 1}
        ).json()
        client.post(f"/api/v1/reservations/{claimed['reservation_id']}/claim")
        client.post("/api/v1/reservations", json={"tags": ["matlab"], "quantity": 1, "priority": 2})
        client.post("/api/v1/resources/lock", params={"tag": "staging"}, json={"ttl": 7200})
        client.post(
            "/api/v1/reservations",
            json={"tags": ["staging"], "quantity": 1, "locked_by_label": "e2e"},
        )
        client.post(
            "/api/v1/reservations", json={"tags": ["staging"], "quantity": 1, "priority": 5}
        )
        cancelled = client.post(
            "/api/v1/reservations", json={"tags": ["staging"], "quantity": 1}
        ).json()
        client.delete(f"/api/v1/reservations/{cancelled['reservation_id']}")


def snapshot_json(text: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(text)
    document.pop("taken_at")
    return document


def backup(kind: str, url: str | None, base_url: str | None, file: Path) -> dict[str, Any]:
    target = ["--url", base_url] if kind == "memory" else ["--persist", url]
    run_command("backup", str(file), *target)  # type: ignore[arg-type]
    return snapshot_json(file.read_text())


@pytest.mark.parametrize("target", KINDS)
@pytest.mark.parametrize("source", KINDS)
def test_backup_restore_round_trip(source: str, target: str, tmp_path: Path) -> None:
    clock = ManualClock(start=utc_now())
    with store_of(source, tmp_path / "source") as source_url:
        with in_process_server(
            Settings(descriptor=LAB_DESCRIPTOR, persist=source_url), clock=clock
        ) as server:
            populate(server.base_url)
            if source == "memory":
                original = backup(source, None, server.base_url, tmp_path / "source.json")
        if source != "memory":
            original = backup(source, source_url, None, tmp_path / "source.json")

        with store_of(target, tmp_path / "target") as target_url:
            if target == "memory":
                with in_process_server(Settings(persist=None), clock=clock) as restored:
                    run_command(
                        "restore", str(tmp_path / "source.json"), "--url", restored.base_url
                    )
                    copy = backup(target, None, restored.base_url, tmp_path / "target.json")
            else:
                run_command("restore", str(tmp_path / "source.json"), "--persist", target_url)  # type: ignore[arg-type]
                copy = backup(target, target_url, None, tmp_path / "target.json")

    assert copy["resources"] == original["resources"]
    assert copy["reservations"] == original["reservations"]
    assert copy["names"] == original["names"]
    assert (copy["last_resource_id"], copy["last_sequence"]) == (
        original["last_resource_id"],
        original["last_sequence"],
    )
    assert any(r["lock"] for r in original["resources"])
    assert {r["status"] for r in original["reservations"]} >= {"claimed", "pending", "cancelled"}


@pytest.mark.parametrize("target", KINDS)
@pytest.mark.parametrize("source", KINDS)
def test_export_import_round_trip(source: str, target: str, tmp_path: Path) -> None:
    clock = ManualClock(start=utc_now())
    exported = tmp_path / "exported.yaml"
    with store_of(source, tmp_path / "source") as source_url:
        with in_process_server(
            Settings(descriptor=LAB_DESCRIPTOR, persist=source_url), clock=clock
        ) as server:
            if source == "memory":
                run_command("export", "--url", server.base_url, "-o", str(exported))
        if source != "memory":
            run_command("export", "--persist", source_url, "-o", str(exported))  # type: ignore[arg-type]

        with store_of(target, tmp_path / "target") as target_url:
            with in_process_server(Settings(persist=target_url), clock=clock) as server:
                if target == "memory":
                    run_command("import", str(exported), "--url", server.base_url)
                    listed = httpx.get(server.base_url + "/api/v1/resources").json()["resources"]
            if target != "memory":
                run_command("import", str(exported), "--persist", target_url)  # type: ignore[arg-type]
                with in_process_server(Settings(persist=target_url), clock=clock) as server:
                    listed = httpx.get(server.base_url + "/api/v1/resources").json()["resources"]

    with in_process_server(Settings(descriptor=LAB_DESCRIPTOR), clock=clock) as reference:
        expected = httpx.get(reference.base_url + "/api/v1/resources").json()["resources"]

    fields = ("id", "name", "description", "endpoint", "tags", "max-lock-duration")
    assert [{f: r[f] for f in fields} for r in listed] == [
        {f: r[f] for f in fields} for r in expected
    ]


def test_restore_rejects_other_json(tmp_path: Path) -> None:
    file = tmp_path / "not-a-snapshot.json"
    file.write_text('{"resources": []}')

    result = CliRunner().invoke(
        main, ["restore", str(file), "--persist", f"sqlite:///{tmp_path / 'x.db'}"]
    )

    assert result.exit_code == 1
    assert "not a rentabot snapshot" in result.output


def test_backup_needs_one_target(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["backup", str(tmp_path / "b.json")])

    assert result.exit_code == 2
    assert "exactly one of --persist" in result.output


def test_sqlite_in_use_points_to_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rentabot.db'}"
    with in_process_server(Settings(descriptor=LAB_DESCRIPTOR, persist=url)):
        result = CliRunner().invoke(main, ["backup", str(tmp_path / "b.json"), "--persist", url])

    assert result.exit_code == 1
    assert "another rentabot process" in result.output
    assert "--url" in result.output


@pytest.mark.parametrize("kind", [k for k in KINDS if k.values[0] != "memory"])
def test_db_upgrade_idempotent(kind: str, tmp_path: Path) -> None:
    with store_of(kind, tmp_path) as url:
        first = run_command("db", "upgrade", "--persist", url)  # type: ignore[arg-type]
        second = run_command("db", "upgrade", "--persist", url)  # type: ignore[arg-type]

    assert "(was empty)" in first
    assert "schema at revision" in second
    assert "(was empty)" not in second
