"""Persistence: SQLAlchemy 2 models, engine and session factory, repositories (domain ports)."""
