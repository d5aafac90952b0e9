"""The task sender and caller the settings wire into ``engine.jobs.dispatch`` (``TASK_SENDER``,
``TASK_CALLER``).

Importing this module imports ``workers.celery``, which configures the Celery app from the
Django settings: the web process, which no longer imports ``workers`` at start-up, gets a
configured app on its first send.
"""

from __future__ import annotations

from typing import Any

from celery.exceptions import TaskRevokedError
from celery.exceptions import TimeoutError as CeleryTimeout
from celery.utils import worker_direct
from kombu import Queue
from kombu.exceptions import OperationalError as KombuOperationalError
from redis.exceptions import ConnectionError as RedisConnectionError

from engine.jobs.dispatch import NoReply
from workers.celery import app

#: Suffix of Celery's per-worker direct queues (``worker_direct``: ``<nodename>.dq2``).
DIRECT_SUFFIX = ".dq2"


def send_task(name: str, args: list[Any], queue: str) -> None:
    """Publish one task message by name on Celery's broker (a worker's direct queue too).

    ``ignore_result``: nobody waits for a job's result (its row is the result). Without it,
    ``send_task`` subscribes the sender to the task's result on the Redis result backend, for
    every job it ever sends, and once Redis has restarted that subscription's reconnection
    gives up with "The Celery application must be restarted" on the next send.
    """
    app.send_task(name, args=args, queue=_queue(queue), ignore_result=True)


def direct_queue_name(nodename: str) -> str:
    """The queue only worker `nodename` consumes (``CELERY_WORKER_DIRECT``)."""
    return str(worker_direct(nodename).name)


def _queue(name: str) -> str | Queue:
    # A direct queue is bound to Celery's "C.dq2" exchange with the nodename as routing key.
    if name.endswith(DIRECT_SUFFIX):
        return worker_direct(name[: -len(DIRECT_SUFFIX)])
    return name


def call_task(
    name: str, args: list[Any], queue: str, timeout: float, pickup_timeout: float | None = None
) -> Any:
    """Send task `name` and wait for its result (the result backend).

    A worker must *start* the task within `pickup_timeout` s (default: `timeout`); the message
    expires then, so a worker that picks it up later (a slow or restarted one) drops it instead
    of answering nobody, and a click is never applied twice. Once a worker has started it (the
    task tracks its start), the caller waits for its answer until `timeout` s in all: a slow
    answer from a live worker is not taken for a dead worker.
    """
    pickup = timeout if pickup_timeout is None else min(pickup_timeout, timeout)
    try:
        result = app.send_task(name, args=args, queue=_queue(queue), expires=pickup)
    except (KombuOperationalError, RedisConnectionError) as exc:  # the broker is down
        raise NoReply(f"the task broker is unavailable ({exc}); try again shortly") from None
    try:
        try:
            return result.get(timeout=pickup, propagate=True, disable_sync_subtasks=False)
        except CeleryTimeout:
            if pickup >= timeout or result.state == "PENDING":
                raise
        return result.get(timeout=timeout - pickup, propagate=True, disable_sync_subtasks=False)
    except CeleryTimeout:
        raise NoReply(
            f"no worker on the {queue!r} queue answered within {timeout:g} s; start one with "
            "`celery -A workers worker -Q interactive` (or `make run`)"
        ) from None
    except TaskRevokedError as exc:
        # a worker took the message after its expiry and dropped it ("expired"): nobody
        # started it in time, the same as a timeout (found under load: benchmarks/bench_load.py)
        raise NoReply(f"no worker on the {queue!r} queue started it in time ({exc})") from None
    finally:
        result.forget()
