"""Send work to the workers by task *name*, once the surrounding transaction commits.

``engine`` never imports Celery or ``workers``: the function that talks to the broker is named
by the ``TASK_SENDER`` setting (a dotted path, e.g. ``"workers.dispatch.send_task"``) and
imported on first use, so the dependency points from the settings to ``workers``, not from
``engine``.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string


class TaskSender(Protocol):
    """What ``TASK_SENDER`` names: send one task message; raises if the broker refuses it."""

    def __call__(self, name: str, args: list[Any], queue: str) -> None: ...


def send_task_on_commit(name: str, args: list[Any], *, queue: str) -> None:
    """Send task `name` with JSON-safe `args` to `queue` after the current transaction commits
    (at once outside one), so a worker never loads a row that is not yet visible to it."""
    transaction.on_commit(functools.partial(_send_now, name, list(args), queue))


def _send_now(name: str, args: list[Any], queue: str) -> None:
    sender: TaskSender = import_string(settings.TASK_SENDER)
    sender(name, args, queue)
