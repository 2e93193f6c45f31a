"""The commands that only read a store reject a SQLite path with no database, creating nothing.

A mistyped path used to give an empty store, so export wrote ``{}`` and exited 0. The
commands that write (restore, import, db upgrade) may still create a new database.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from rentabot.cli.main import main

BEYOND_9999 = "9999-12-31T23:59:59-23:59"

READ_ONLY_COMMANDS = [
    pytest.param(["export", "-o", "{out}/e.yaml"], id="export"),
    pytest.param(["backup", "{out}/b.json"], id="backup"),
    pytest.param(["audit"], id="audit"),
]


@pytest.mark.parametrize("command", READ_ONLY_COMMANDS)
def test_read_missing_sqlite_exits_1(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "nonexistent_dir" / "x.db"
    arguments = [part.format(out=tmp_path) for part in command]

    result = CliRunner().invoke(main, [*arguments, "--persist", f"sqlite:///{missing}"])

    assert result.exit_code == 1
    assert f"no SQLite database at {missing}; check the path" in result.output
    assert "rentabot db upgrade" in result.output
    assert sorted(path.name for path in tmp_path.iterdir()) == []


def test_db_upgrade_creates_readable_store(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'x.db'}"
    runner = CliRunner()

    upgraded = runner.invoke(main, ["db", "upgrade", "--persist", url])
    backup = runner.invoke(main, ["backup", str(tmp_path / "b.json"), "--persist", url])

    assert upgraded.exit_code == 0, upgraded.output
    assert backup.exit_code == 0, backup.output
    assert "saved 0 resources and 0 reservations" in backup.output


def test_restore_creates_missing_sqlite(tmp_path: Path) -> None:
    snapshot = tmp_path / "b.json"
    snapshot.write_text(
        '{"format": "rentabot-snapshot", "version": 1, "resources": [], "reservations": [], '
        '"names": {}, "last_resource_id": 0, "last_sequence": 0}'
    )
    url = f"sqlite:///{tmp_path / 'new' / 'x.db'}"

    result = CliRunner().invoke(main, ["restore", str(snapshot), "--persist", url])

    assert result.exit_code == 0, result.output
    assert (tmp_path / "new" / "x.db").is_file()


def test_audit_since_beyond_9999_exits_2(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    runner = CliRunner()
    runner.invoke(main, ["db", "upgrade", "--persist", url], catch_exceptions=False)

    result = runner.invoke(main, ["audit", "--persist", url, "--since", BEYOND_9999])

    assert result.exit_code == 2
    assert "Invalid value for '--since'" in result.output
    assert "the latest instant rentabot can store" in result.output


def test_start_window_beyond_9999_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # If the descriptor were accepted, the command would return here instead of serving.
    started: list[object] = []
    monkeypatch.setattr("rentabot.api.server.serve", started.append)
    descriptor = tmp_path / "lab.yaml"
    descriptor.write_text(
        "a:\n  maintenance:\n"
        "    - {start: '2030-01-01T08:00:00+00:00', end: '9999-12-31T23:00:00-05:00', reason: x}\n"
    )

    result = CliRunner().invoke(main, ["--config", str(descriptor)])

    assert result.exit_code == 2, result.output
    assert started == []
    assert f"{descriptor}:3: resource 'a': maintenance[1].end" in result.output
    assert "after 9999-12-31T23:59:59.999999+00:00" in result.output
