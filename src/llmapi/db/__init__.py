"""Persistence: SQLAlchemy models, the Database (engine and sessions), repositories and Alembic migrations.

Import what you need from the modules themselves; this package imports nothing at import time.
"""
