"""Scheduled housekeeping (Celery beat; the schedule is ``CELERY_BEAT_SCHEDULE`` in settings)."""

from __future__ import annotations

import logging

from celery import Task, shared_task

from engine.annotation import session_pruning
from engine.jobs import recovery

logger = logging.getLogger(__name__)


# A sweep is a few queries; a stuck one must not hold the default queue's only worker for long.
@shared_task(
    name="workers.recover_orphaned_jobs",
    ignore_result=True,
    soft_time_limit=2 * 60,
    time_limit=3 * 60,
)
def recover_orphaned_jobs() -> dict[str, list[int]]:
    return recovery.do_recover_orphaned_jobs()


#: Seconds the session sweep waits for the workers' answers to its ping.
PING_TIMEOUT_SECONDS = 2.0


def _live_workers() -> set[str] | None:
    """Names of the workers that answer a ping now; None when the ping itself failed."""
    from celery import current_app

    try:
        replies = current_app.control.ping(timeout=PING_TIMEOUT_SECONDS)
    except Exception:  # the broker or its transport cannot broadcast: prune idle rows only
        logger.warning("model-session sweep: the ping failed; pruning idle rows only")
        return None
    return {name for reply in replies or () for name in reply}


@shared_task(
    name="workers.prune_model_sessions",
    bind=True,
    ignore_result=True,
    soft_time_limit=60,
    time_limit=90,
)
def prune_model_sessions(self: Task) -> dict[str, list[int]]:
    """Delete idle model-session rows and those of lost workers (engine.annotation.session_pruning).

    The worker running the sweep counts as live: a solo pool (the embedded default, which also
    serves clicks) cannot answer its own ping while it runs this task."""
    live = _live_workers()
    if live is not None and self.request.hostname:
        live.add(str(self.request.hostname))
    result = session_pruning.do_prune_model_sessions(live).to_json()
    if result["idle"] or result["lost"]:
        logger.info("model sessions pruned: %s", result)
    return result
