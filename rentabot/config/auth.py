"""The authentication file: who may call the API, and as which role.

::

    auth:
      enabled: true                  # default true once a file is given
      admin_token: "a-long-random-string"   # or admin_token_sha256, or RENTABOT_ADMIN_TOKEN
      protect_reads: false           # true: reading resources also needs a key
      allowed_origins: ["https://ci.example.com"]
    user_tokens:
      - "a-plain-token"                          # named user-1, user-2... by position
      - {name: jenkins, token: "..."}
      - {name: github, token_sha256: "<64 hex digits of sha256(token)>"}

Only SHA-256 digests of the tokens are kept in memory, and a presented key is compared
with every digest in constant time. A file with any mistake stops start-up with a
message naming the entry: the service never starts with authentication silently off.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rentabot.domain.models import Role

logger = logging.getLogger(__name__)

ADMIN_TOKEN_ENV = "RENTABOT_ADMIN_TOKEN"
ADMIN_NAME = "admin"
SHORT_TOKEN = 16
SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
AUTH_KEYS = frozenset(
    {"enabled", "admin_token", "admin_token_sha256", "protect_reads", "allowed_origins"}
)
TOKEN_KEYS = frozenset({"name", "token", "token_sha256"})
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


class AuthConfigError(Exception):
    """The authentication file cannot be used; the message names the entry and the fix."""


@dataclass(frozen=True, slots=True)
class TokenEntry:
    name: str
    role: Role
    digest: bytes


@dataclass(frozen=True, slots=True)
class AuthConfig:
    """Authentication settings; ``enabled`` False means everyone may do everything."""

    enabled: bool = False
    tokens: tuple[TokenEntry, ...] = ()
    protect_reads: bool = False
    allowed_origins: frozenset[str] = field(default_factory=frozenset)

    def identify(self, key: str) -> TokenEntry | None:
        """Return the entry whose token is ``key``, comparing with every one in constant time."""
        digest = hashlib.sha256(key.encode("utf-8")).digest()
        found = None
        for entry in self.tokens:
            # No early exit: the time taken does not depend on which entry matches.
            if hmac.compare_digest(entry.digest, digest):
                found = entry
        return found


def digest_of(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def load_auth_config(path: Path | None, env: Mapping[str, str] | None = None) -> AuthConfig:
    """Read the authentication file (if any) and RENTABOT_ADMIN_TOKEN.

    With neither, authentication is off. RENTABOT_ADMIN_TOKEN alone turns it on with
    the admin token only.
    """
    env = os.environ if env is None else env
    env_admin = env.get(ADMIN_TOKEN_ENV)
    if env_admin is not None and not env_admin.strip():
        raise AuthConfigError(f"{ADMIN_TOKEN_ENV} is set but empty; set a token or unset it")

    if path is None:
        if env_admin is None:
            return AuthConfig()
        return AuthConfig(enabled=True, tokens=(admin_entry(env_admin, None, "env"),))

    document = read_document(path)
    return _Reader(str(path), env_admin).config(document)


def read_document(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise AuthConfigError(f"{path}: cannot read the authentication file: {error}") from error
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise AuthConfigError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(document, dict):
        raise AuthConfigError(
            f"{path}: the authentication file must be a mapping with the keys auth and user_tokens"
        )
    return document


def admin_entry(token: str | None, token_sha256: str | None, where: str) -> TokenEntry:
    if token is not None:
        check_token(token, where)
        return TokenEntry(ADMIN_NAME, Role.ADMIN, digest_of(token))
    assert token_sha256 is not None
    return TokenEntry(ADMIN_NAME, Role.ADMIN, parse_digest(token_sha256, where))


def check_token(token: object, where: str) -> str:
    if not isinstance(token, str) or not token.strip():
        raise AuthConfigError(f"{where}: the token is empty or not text; set a long random string")
    if token != token.strip():
        raise AuthConfigError(f"{where}: the token starts or ends with spaces; remove them")
    if len(token) < SHORT_TOKEN:
        logger.warning(
            "auth.short_token entry=%s length=%d (use at least %d random characters)",
            where,
            len(token),
            SHORT_TOKEN,
        )
    return token


def parse_digest(value: object, where: str) -> bytes:
    if not isinstance(value, str) or not SHA256_HEX.match(value):
        raise AuthConfigError(
            f"{where}: token_sha256 must be 64 hexadecimal digits, the SHA-256 of the token "
            "(for example: printf %s TOKEN | sha256sum)"
        )
    return bytes.fromhex(value)


class _Reader:
    def __init__(self, source: str, env_admin: str | None) -> None:
        self.source = source
        self.env_admin = env_admin

    def fail(self, where: str, problem: str) -> AuthConfigError:
        return AuthConfigError(f"{self.source}: {where}: {problem}")

    def config(self, document: Mapping[str, Any]) -> AuthConfig:
        unknown = set(document) - {"auth", "user_tokens"}
        if unknown:
            raise self.fail(
                f"unknown key {sorted(unknown)[0]!r}", "the top-level keys are auth and user_tokens"
            )
        auth = document.get("auth") or {}
        if not isinstance(auth, dict):
            raise self.fail("auth", "must be a mapping of enabled, admin_token, protect_reads...")
        unknown = set(auth) - AUTH_KEYS
        if unknown:
            raise self.fail(
                f"auth.{sorted(unknown)[0]}",
                f"unknown key; known keys: {', '.join(sorted(AUTH_KEYS))}",
            )

        enabled = self.boolean(auth, "enabled", default=True)
        tokens = [self.admin(auth), *self.users(document.get("user_tokens"))]
        self.check_unique(tokens)
        origins = self.origins(auth.get("allowed_origins"))
        if not enabled:
            logger.warning("auth.disabled_by_file file=%s (auth.enabled is false)", self.source)
        return AuthConfig(
            enabled=enabled,
            tokens=tuple(tokens),
            protect_reads=self.boolean(auth, "protect_reads", default=False),
            allowed_origins=origins,
        )

    def boolean(self, auth: Mapping[str, Any], key: str, default: bool) -> bool:
        value = auth.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(f"auth.{key}", f"must be true or false, not {value!r}")
        return value

    def admin(self, auth: Mapping[str, Any]) -> TokenEntry:
        if self.env_admin is not None:
            return admin_entry(self.env_admin, None, ADMIN_TOKEN_ENV)
        plain, hashed = auth.get("admin_token"), auth.get("admin_token_sha256")
        if plain is not None and hashed is not None:
            raise self.fail("auth", "set admin_token or admin_token_sha256, not both")
        if plain is None and hashed is None:
            raise self.fail(
                "auth.admin_token",
                f"missing; set admin_token, admin_token_sha256 or the variable {ADMIN_TOKEN_ENV}",
            )
        where = f"{self.source}: auth.admin_token"
        return (
            admin_entry(plain, None, where)
            if plain is not None
            else admin_entry(None, hashed, f"{self.source}: auth.admin_token_sha256")
        )

    def users(self, entries: object) -> list[TokenEntry]:
        if entries is None:
            return []
        if not isinstance(entries, list):
            raise self.fail("user_tokens", "must be a list of tokens or {name, token} mappings")
        return [self.user(index, entry) for index, entry in enumerate(entries, start=1)]

    def user(self, index: int, entry: object) -> TokenEntry:
        where = f"{self.source}: user_tokens[{index}]"
        if isinstance(entry, str):
            return TokenEntry(f"user-{index}", Role.USER, digest_of(check_token(entry, where)))
        if not isinstance(entry, dict):
            raise AuthConfigError(f"{where}: must be a token or a {{name, token}} mapping")

        unknown = set(entry) - TOKEN_KEYS
        if unknown:
            raise AuthConfigError(
                f"{where}: unknown key {sorted(unknown)[0]!r}; use name with token or token_sha256"
            )
        name = entry.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            raise AuthConfigError(
                f"{where}: name must be 1-64 letters, digits, '.', '_', '@' or '-', not {name!r}"
            )
        plain, hashed = entry.get("token"), entry.get("token_sha256")
        if (plain is None) == (hashed is None):
            raise AuthConfigError(f"{where} ({name}): set exactly one of token and token_sha256")
        if plain is not None:
            return TokenEntry(name, Role.USER, digest_of(check_token(plain, f"{where} ({name})")))
        return TokenEntry(name, Role.USER, parse_digest(hashed, f"{where} ({name})"))

    def check_unique(self, tokens: list[TokenEntry]) -> None:
        names: dict[str, TokenEntry] = {}
        digests: dict[bytes, TokenEntry] = {}
        for entry in tokens:
            if entry.name in names:
                raise self.fail(
                    f"token {entry.name!r}", "the name is used twice; names must be unique"
                )
            if entry.digest in digests:
                raise self.fail(
                    f"token {entry.name!r}",
                    f"is the same token as {digests[entry.digest].name!r}; every entry needs "
                    "its own token",
                )
            names[entry.name] = entry
            digests[entry.digest] = entry

    def origins(self, value: object) -> frozenset[str]:
        if value is None:
            return frozenset()
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.fail(
                "auth.allowed_origins", "must be a list of origins such as https://ci.example.com"
            )
        for origin in value:
            if not re.match(r"^https?://[^/\s]+$", origin):
                raise self.fail(
                    "auth.allowed_origins",
                    f"{origin!r} is not an origin; write scheme://host[:port] with no path",
                )
        return frozenset(origin.lower() for origin in value)
