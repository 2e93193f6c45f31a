"""The authentication file: accepted forms, and mistakes that stop start-up by name."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from rentabot.api.app import StartupError, create_app
from rentabot.cli.main import main
from rentabot.config.auth import AuthConfigError, load_auth_config
from rentabot.config.settings import Settings
from rentabot.domain.models import Role
from tests.support.auth import (
    ADMIN_TOKEN,
    ALICE_TOKEN,
    BOB_TOKEN,
    CAROL_TOKEN,
    UNKNOWN_TOKEN,
    sha256_hex,
    write_auth_file,
)
from tests.support.servers import LAB_DESCRIPTOR


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "auth.yaml"
    path.write_text(text)
    return path


def test_tokens_identified_by_role(tmp_path: Path) -> None:
    config = load_auth_config(write_auth_file(tmp_path), env={})

    found = {
        token: config.identify(token)
        for token in (ADMIN_TOKEN, ALICE_TOKEN, BOB_TOKEN, CAROL_TOKEN)
    }

    assert config.enabled
    assert (found[ADMIN_TOKEN].name, found[ADMIN_TOKEN].role) == ("admin", Role.ADMIN)  # type: ignore[union-attr]
    assert (found[ALICE_TOKEN].name, found[ALICE_TOKEN].role) == ("alice", Role.USER)  # type: ignore[union-attr]
    assert found[BOB_TOKEN].name == "bob"  # type: ignore[union-attr]
    assert found[CAROL_TOKEN].name == "user-3"  # type: ignore[union-attr]
    assert config.identify(UNKNOWN_TOKEN) is None


def test_hashed_entry_keeps_no_secret(tmp_path: Path) -> None:
    path = write_auth_file(tmp_path)

    assert BOB_TOKEN not in path.read_text()
    assert sha256_hex(BOB_TOKEN) in path.read_text()


def test_no_file_means_auth_off() -> None:
    assert not load_auth_config(None, env={}).enabled


def test_admin_token_from_environment() -> None:
    config = load_auth_config(None, env={"RENTABOT_ADMIN_TOKEN": ADMIN_TOKEN})

    assert config.enabled
    assert config.identify(ADMIN_TOKEN).role is Role.ADMIN  # type: ignore[union-attr]


def test_environment_overrides_file_admin(tmp_path: Path) -> None:
    path = write_auth_file(tmp_path)

    config = load_auth_config(path, env={"RENTABOT_ADMIN_TOKEN": UNKNOWN_TOKEN})

    assert config.identify(UNKNOWN_TOKEN).role is Role.ADMIN  # type: ignore[union-attr]
    assert config.identify(ADMIN_TOKEN) is None


def test_explicitly_disabled_file(tmp_path: Path) -> None:
    path = write(tmp_path, f"auth:\n  enabled: false\n  admin_token: {ADMIN_TOKEN}\n")

    assert not load_auth_config(path, env={}).enabled


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (f"auth:\n  admin_token: {ADMIN_TOKEN}\n  colour: red\n", "auth.colour: unknown key"),
        (f"auth:\n  admin_token: {ADMIN_TOKEN}\nusers: []\n", "unknown key 'users'"),
        (
            f"auth:\n  admin_token: {ADMIN_TOKEN}\nuser_tokens:\n  - {{name: a, token: {ALICE_TOKEN}}}\n  - {{name: b, token: {ALICE_TOKEN}}}\n",
            "token 'b': is the same token as 'a'",
        ),
        (
            f"auth:\n  admin_token: {ADMIN_TOKEN}\nuser_tokens:\n  - {ADMIN_TOKEN}\n",
            "is the same token as 'admin'",
        ),
        (
            f"auth:\n  admin_token: {ADMIN_TOKEN}\nuser_tokens:\n  - {{name: a, token: {ALICE_TOKEN}}}\n  - {{name: a, token: {BOB_TOKEN}}}\n",
            "token 'a': the name is used twice",
        ),
        (
            f"auth:\n  admin_token: {ADMIN_TOKEN}\nuser_tokens:\n  - {{name: a, token: ''}}\n",
            "user_tokens[1] (a): the token is empty",
        ),
        (
            f"auth:\n  admin_token: {ADMIN_TOKEN}\nuser_tokens:\n  - ''\n",
            "user_tokens[1]: the token is empty",
        ),
        ("auth:\n  admin_token: ''\n", "auth.admin_token: the token is empty"),
        (
            f"auth:\n  admin_token: {ADMIN_TOKEN}\nuser_tokens:\n  - {{name: a, token_sha256: abc}}\n",
            "user_tokens[1] (a): token_sha256 must be 64 hexadecimal digits",
        ),
        (
            f"auth:\n  admin_token: {ADMIN_TOKEN}\nuser_tokens:\n  - {{name: a, token: {ALICE_TOKEN}, role: admin}}\n",
            "user_tokens[1]: unknown key 'role'",
        ),
        (
            f"auth:\n  admin_token: {ADMIN_TOKEN}\nuser_tokens:\n  - {{name: a, token: {ALICE_TOKEN}, token_sha256: {sha256_hex(BOB_TOKEN)}}}\n",
            "set exactly one of token and token_sha256",
        ),
        (
            f"auth:\n  admin_token: {ADMIN_TOKEN}\nuser_tokens:\n  - {{name: 'has space', token: {ALICE_TOKEN}}}\n",
            "name must be",
        ),
        ("auth:\n  enabled: true\n", "auth.admin_token: missing"),
        (
            f"auth:\n  enabled: yes please\n  admin_token: {ADMIN_TOKEN}\n",
            "auth.enabled: must be true or false",
        ),
        (
            f"auth:\n  admin_token: {ADMIN_TOKEN}\n  allowed_origins: [ci.example.com]\n",
            "'ci.example.com' is not an origin",
        ),
        ("- a\n", "must be a mapping"),
        ("auth: [\n", "not valid YAML"),
    ],
    ids=[
        "unknown-auth-key",
        "unknown-top-key",
        "duplicate-user-token",
        "user-token-is-admin",
        "duplicate-name",
        "empty-token",
        "empty-bare-token",
        "empty-admin-token",
        "bad-hash",
        "unknown-entry-key",
        "token-and-hash",
        "bad-name",
        "no-admin",
        "enabled-not-bool",
        "bad-origin",
        "not-mapping",
        "not-yaml",
    ],
)
def test_bad_file_names_entry(tmp_path: Path, text: str, named: str) -> None:
    path = write(tmp_path, text)

    with pytest.raises(AuthConfigError) as raised:
        load_auth_config(path, env={})

    assert named in str(raised.value)
    assert str(path) in str(raised.value)


def test_empty_admin_variable_rejected() -> None:
    with pytest.raises(AuthConfigError) as raised:
        load_auth_config(None, env={"RENTABOT_ADMIN_TOKEN": " "})

    assert "RENTABOT_ADMIN_TOKEN is set but empty" in str(raised.value)


def test_command_stops_on_bad_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RENTABOT_ADMIN_TOKEN", raising=False)
    path = write(
        tmp_path,
        f"auth:\n  admin_token: {ADMIN_TOKEN}\nuser_tokens:\n  - {{name: a, token_sha256: xyz}}\n",
    )

    result = CliRunner().invoke(main, ["--config", str(LAB_DESCRIPTOR), "--auth-config", str(path)])

    assert result.exit_code == 2
    assert "user_tokens[1] (a): token_sha256 must be" in result.output


def test_app_does_not_start_on_bad_file(tmp_path: Path) -> None:
    path = write(tmp_path, "auth:\n  enabled: true\n")
    app = create_app(Settings(descriptor=LAB_DESCRIPTOR, auth_config=path))

    async def start() -> None:
        async with app.router.lifespan_context(app):
            pass

    with pytest.raises(StartupError) as raised:
        asyncio.run(start())

    assert "auth.admin_token: missing" in str(raised.value)
