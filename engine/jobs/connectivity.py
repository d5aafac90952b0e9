"""Is this process's database connection lost, and waiting until the database answers again.

A worker whose database restarts (or whose connection is cut) gets ``OperationalError`` or
``InterfaceError`` from every query on the dead connection: Django reconnects only when a
request or task starts. :func:`engine.jobs.lifecycle.run_job` uses these to tell a lost
connection from a failing query, and to wait for the database before it gives its job back.
"""

from __future__ import annotations

import contextlib
import logging
import time

from django.db import InterfaceError, OperationalError, connection

logger = logging.getLogger(__name__)

#: The errors a lost connection or an unreachable server raises.
DATABASE_GONE: tuple[type[Exception], ...] = (OperationalError, InterfaceError)

#: How long a worker waits for its database to answer again before it leaves its job to the
#: recovery sweep.
WAIT_SECONDS = 60.0


def database_lost() -> bool:
    """After a database error: whether the connection is gone (closed, unusable, never made),
    as opposed to a query that failed on a working connection."""
    try:
        return connection.connection is None or not connection.is_usable()
    except Exception:
        return True


def wait_for_database(budget: float = WAIT_SECONDS) -> bool:
    """Drop the dead connection and connect again until it works or `budget` seconds pass;
    whether it works. Never inside a transaction (closing its connection would break it):
    there it returns False at once."""
    if connection.in_atomic_block:
        return False
    deadline = time.monotonic() + budget
    delay = 0.5
    while True:
        with contextlib.suppress(Exception):
            connection.close()
        try:
            connection.ensure_connection()
            return True
        except DATABASE_GONE as exc:
            if time.monotonic() + delay > deadline:
                logger.warning("the database still does not answer after %.0f s: %s", budget, exc)
                return False
        time.sleep(delay)
        delay = min(delay * 2, 5.0)
