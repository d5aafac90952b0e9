"""Send work to the workers by task *name*, once the surrounding transaction commits.

``engine`` never imports Celery or ``workers``: the function that talks to the broker is named
by the ``TASK_SENDER`` setting (a dotted path, e.g. ``"workers.dispatch.send_task"``) and
imported on first use, so the dependency points from the settings to ``workers``, not from
``engine``. Request/reply calls (an interactive click waits for its mask) go the same way through
``TASK_CALLER``.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

from engine.errors import Unavailable

logger = logging.getLogger(__name__)


class TaskSender(Protocol):
    """What ``TASK_SENDER`` names: send one task message; raises if the broker refuses it."""

    def __call__(self, name: str, args: list[Any], queue: str) -> None: ...


def send_task_on_commit(name: str, args: list[Any], *, queue: str, robust: bool = False) -> None:
    """Send task `name` with JSON-safe `args` to `queue` after the current transaction commits
    (at once outside one), so a worker never loads a row that is not yet visible to it.
    ``robust``: a failed send (e.g. the broker is down) is logged instead of raised, for work
    that is best-effort or that something else sends again (the recovery sweep resends jobs).

    (Not Django's ``on_commit(robust=True)``: it logs with the callback's ``__qualname__``,
    which a ``functools.partial`` lacks, so a failed send raised AttributeError instead.)"""
    arguments = list(args)

    def send() -> None:
        try:
            _send_now(name, arguments, queue)
        except Exception:
            if not robust:
                raise
            logger.warning(
                "task %s%s for the %r queue was not sent", name, arguments, queue, exc_info=True
            )

    transaction.on_commit(send)


def _send_now(name: str, args: list[Any], queue: str) -> None:
    sender: TaskSender = import_string(settings.TASK_SENDER)
    sender(name, args, queue)


class NoReply(Unavailable):
    """No worker answered a request/reply call in time (503): none is running on the queue,
    or the one a message was routed to is gone."""


class TaskCaller(Protocol):
    """What ``TASK_CALLER`` names: send one task and wait for its JSON result; raises
    :class:`NoReply` when no worker starts it within ``pickup_timeout`` seconds (the message
    then expires unserved) or a started one has not answered within ``timeout``."""

    def __call__(
        self,
        name: str,
        args: list[Any],
        queue: str,
        timeout: float,
        pickup_timeout: float | None = None,
    ) -> Any: ...


def call_task(
    name: str,
    args: list[Any],
    *,
    queue: str,
    timeout: float,
    pickup_timeout: float | None = None,
) -> Any:
    """Send task `name` to `queue` now (not on commit: the caller waits for the reply) and
    return its result. Raises :class:`NoReply` when no worker starts it within
    `pickup_timeout` seconds (default `timeout`) or a started one has not answered by `timeout`."""
    caller: TaskCaller = import_string(settings.TASK_CALLER)
    return caller(name, list(args), queue, timeout, pickup_timeout)
