"""Celery tasks (propagation): thin wrappers that load by id and call engine/."""
