"""Alembic migrations of the gengbao schema (run them with :func:`engine.store.db.upgrade`)."""
