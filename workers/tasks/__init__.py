"""Celery tasks, one module per area. Task names are explicit and pinned by tests."""
