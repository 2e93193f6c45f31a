"""The rentabot command: options, descriptor discovery, clean errors, and a real start."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest
import uvicorn
from click.testing import CliRunner

from rentabot.cli.main import find_descriptor, main
from tests.support.servers import LAB_DESCRIPTOR, start_rentabot_command


def test_help_lists_options() -> None:
    result = CliRunner().invoke(main, ["--help"])

    assert result.exit_code == 0
    for option in (
        "--config",
        "--host",
        "--port",
        "--log-level",
        "--persist",
        "--claim-window",
        "--queue-policy",
        "--auth-config",
        "--forwarded-allow-ips",
    ):
        assert option in result.output


def test_version_printed() -> None:
    result = CliRunner().invoke(main, ["--version"])

    assert result.exit_code == 0
    assert "rentabot" in result.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--config", "missing.yaml"], "missing.yaml: cannot read"),
        (["--persist", "redis://x"], "unsupported store"),
        (["--queue-policy", "random"], "'random' is not one of"),
        (["--claim-window", "0"], "0 is not in the range"),
        (["--forwarded-allow-ips", "proxy.local"], "'proxy.local' is not an IP address"),
    ],
    ids=["missing-descriptor", "bad-store", "bad-policy", "zero-window", "proxy-name"],
)
def test_bad_option_stops_cleanly(
    arguments: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("RENTABOT_"):
            monkeypatch.delenv(name)

    result = CliRunner().invoke(main, arguments)

    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_bad_descriptor_names_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "lab.yaml"
    bad.write_text("a:\n  max_lock_duration: ten\n")

    result = CliRunner().invoke(main, ["--config", str(bad)])

    assert result.exit_code == 2
    assert f"{bad}:2: resource 'a': max_lock_duration" in result.output


class TestDiscovery:
    """Order: --config, ./.rentabot.yaml, ./rentabot.yaml, ~/.rentabot/config.yaml, the variable."""

    @pytest.fixture(autouse=True)
    def places(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        work, home = tmp_path / "work", tmp_path / "home"
        work.mkdir()
        (home / ".rentabot").mkdir(parents=True)
        monkeypatch.chdir(work)
        monkeypatch.setenv("HOME", str(home))
        monkeypatch.delenv("RENTABOT_RESOURCE_DESCRIPTOR", raising=False)
        return tmp_path

    def test_explicit_config_first(self, places: Path) -> None:
        (places / "work" / ".rentabot.yaml").write_text("a:\n")

        assert find_descriptor("given.yaml") == Path("given.yaml")

    def test_hidden_file_before_plain(self, places: Path) -> None:
        (places / "work" / ".rentabot.yaml").write_text("a:\n")
        (places / "work" / "rentabot.yaml").write_text("a:\n")

        assert find_descriptor(None) == places / "work" / ".rentabot.yaml"

    def test_home_before_variable(self, places: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        (places / "home" / ".rentabot" / "config.yaml").write_text("a:\n")
        monkeypatch.setenv("RENTABOT_RESOURCE_DESCRIPTOR", "from-env.yaml")

        assert find_descriptor(None) == places / "home" / ".rentabot" / "config.yaml"

    def test_variable_last(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("RENTABOT_RESOURCE_DESCRIPTOR", "from-env.yaml")

        assert find_descriptor(None) == Path("from-env.yaml")

    def test_nothing_found(self) -> None:
        assert find_descriptor(None) is None


def test_command_serves_descriptor(tmp_path: Path) -> None:
    server = start_rentabot_command(
        tmp_path / "server.log", "--config", str(LAB_DESCRIPTOR), "--log-level", "warning"
    )
    try:
        listing = httpx.get(server.base_url + "/api/v1/resources").json()["resources"]
    finally:
        server.stop()
    names = [resource["name"] for resource in listing]

    assert names[0] == "pixel-8-a"
    assert len(names) == 21


def test_keep_alive_outlasts_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server keeps an idle connection open longer than its clients do.

    Otherwise a client may send a request on a connection just as the server closes it.
    httpx closes idle connections after 5 s, AWS load balancers after 60 s.
    """
    started: list[uvicorn.Config] = []
    monkeypatch.setattr("rentabot.api.server.serve", started.append)

    result = CliRunner().invoke(main, ["--config", str(LAB_DESCRIPTOR), "--log-level", "warning"])

    assert result.exit_code == 0, result.output
    [config] = started
    assert config.timeout_keep_alive > httpx.Limits().keepalive_expiry  # type: ignore[operator]
    assert config.timeout_keep_alive > 60
