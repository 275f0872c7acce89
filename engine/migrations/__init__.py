"""Alembic migrations of the gengbao schema (run them with :func:`engine.db.upgrade`)."""
