"""Celery app and tasks: thin wrappers that load by id and call engine/ or model/."""

from workers.celery import app as celery_app

__all__ = ["celery_app"]
