"""A fresh PostgreSQL schema per test, on the server named by RENTABOT_TEST_POSTGRES_URL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import psycopg
import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    return os.environ.get("RENTABOT_TEST_POSTGRES_URL", DEFAULT_URL)


def available() -> str | None:
    """Return None when the server answers, else the reason it does not."""
    try:
        with psycopg.connect(server_url(), connect_timeout=3):
            return None
    except psycopg.Error as error:
        return f"PostgreSQL at {server_url()} is unreachable: {error}".strip()


def url_with_schema(schema: str) -> str:
    separator = "&" if "?" in server_url() else "?"
    return f"{server_url()}{separator}options={quote(f'-csearch_path={schema}')}"


@contextmanager
def fresh_schema() -> Iterator[str]:
    """Create an empty schema, yield a URL whose connections use it, then drop it."""
    reason = available()
    if reason is not None:
        pytest.skip(reason)
    schema = f"rentabot_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url(), autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield url_with_schema(schema)
    finally:
        with psycopg.connect(server_url(), autocommit=True) as connection:
            connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
