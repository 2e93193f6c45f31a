"""Stores behind one interface: in-memory (the default), SQLite and PostgreSQL."""
