"""Alembic environment: runs migrations on the connection rentabot hands over.

rentabot calls Alembic from code (see ``rentabot.storage.sql.migrate``) and passes an
open connection in ``config.attributes["connection"]``; the ``alembic`` command line
works too, with ``-x url=DATABASE_URL``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from rentabot.storage.sql.schema import metadata

config = context.config


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        migrate(connection)
        return

    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit(
            "pass the database with: alembic -x url=sqlite:///rentabot.db upgrade head"
        )
    engine = create_engine(url)
    with engine.begin() as connection:
        migrate(connection)


def migrate(connection: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite alters tables by copying them.
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
