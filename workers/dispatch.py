"""The task sender the settings wire into ``engine.jobs.dispatch`` (``TASK_SENDER``).

Importing this module imports ``workers.celery``, which configures the Celery app from the
Django settings: the web process, which no longer imports ``workers`` at start-up, gets a
configured app on its first send.
"""

from __future__ import annotations

from typing import Any

from workers.celery import app


def send_task(name: str, args: list[Any], queue: str) -> None:
    """Publish one task message by name on Celery's broker."""
    app.send_task(name, args=args, queue=queue)
