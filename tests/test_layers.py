"""The folder layout is the architecture: the domain rules stand alone.

Each check imports in a fresh interpreter and lists what got loaded, so an import
added anywhere down the chain is caught, not only one written in the domain files.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import rentabot

PACKAGE = Path(rentabot.__file__).parent
WEB_AND_DATABASE = ("fastapi", "starlette", "sqlalchemy", "alembic", "psycopg", "uvicorn")


def loaded_after(*modules: str) -> set[str]:
    """Return the top-level names of every module loaded by importing ``modules``."""
    script = (
        "import importlib, json, sys\n"
        f"for name in {list(modules)!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    return set(json.loads(output))


def domain_modules() -> list[str]:
    return sorted(f"rentabot.domain.{path.stem}" for path in (PACKAGE / "domain").glob("*.py"))


def test_domain_rules_load_no_web_or_database() -> None:
    modules = domain_modules()
    assert "rentabot.domain.queue" in modules

    loaded = loaded_after(*modules)

    assert not loaded & set(WEB_AND_DATABASE)


def test_domain_imports_no_outer_layer() -> None:
    """The rules may not reach into storage, the web API, the page or the CLI."""
    outer = ("rentabot.storage", "rentabot.api", "rentabot.web", "rentabot.cli", "rentabot.service")
    for path in (PACKAGE / "domain").glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for layer in outer:
            assert f"from {layer}" not in text, f"{path.name} imports {layer}"
            assert f"import {layer}" not in text, f"{path.name} imports {layer}"


def test_memory_service_loads_no_database() -> None:
    """The default in-memory service does not load SQLAlchemy (about 11 MiB resident)."""
    loaded = loaded_after("rentabot.main")

    assert "fastapi" in loaded
    assert "sqlalchemy" not in loaded
    assert "psycopg" not in loaded
