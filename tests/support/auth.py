"""Tokens and an authentication file for tests; the tokens are test values, not secrets."""

from __future__ import annotations

import hashlib
from pathlib import Path

ADMIN_TOKEN = "admin-0f7c2a9e41d84b6c93e5"
ALICE_TOKEN = "alice-5b1d8e3f97c24a06b8d1"
BOB_TOKEN = "bob-8e2f4c6a1d9b37e05f72c4"
CAROL_TOKEN = "carol-3c9a7e1f5b2d48c06e94"
UNKNOWN_TOKEN = "nobody-4a8c2e6f0b1d3957ace2"
ALL_TOKENS = (ADMIN_TOKEN, ALICE_TOKEN, BOB_TOKEN, CAROL_TOKEN)


def sha256_hex(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def write_auth_file(folder: Path, protect_reads: bool = False) -> Path:
    """Admin, alice (plain token), bob (only its SHA-256 in the file), carol (a bare token)."""
    path = folder / "auth.yaml"
    path.write_text(
        "auth:\n"
        "  enabled: true\n"
        f"  admin_token: {ADMIN_TOKEN}\n"
        f"  protect_reads: {'true' if protect_reads else 'false'}\n"
        "  allowed_origins: [https://ci.example.com]\n"
        "user_tokens:\n"
        f"  - {{name: alice, token: {ALICE_TOKEN}}}\n"
        f"  - {{name: bob, token_sha256: {sha256_hex(BOB_TOKEN)}}}\n"
        f"  - {CAROL_TOKEN}\n"
    )
    return path


def key(token: str | None) -> dict[str, str]:
    return {"X-API-Key": token} if token else {}
