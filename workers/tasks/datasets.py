"""Celery tasks (datasets): thin wrappers that load by id and call engine/."""
