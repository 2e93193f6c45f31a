"""The SQL store: SQLite and PostgreSQL through SQLAlchemy Core, schema by Alembic."""
