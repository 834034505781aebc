"""Persistence: SQLAlchemy models, repositories and Alembic migrations.

Nothing outside this package writes SQL.
"""
