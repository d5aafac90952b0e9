"""A task for testing request/reply: loaded into a test worker with ``--include``."""

from __future__ import annotations

import time

from celery import shared_task


@shared_task(name="tests.slow_echo", ignore_result=False, track_started=True)
def slow_echo(seconds: float, value: str) -> str:
    time.sleep(seconds)
    return value
