"""Scheduled housekeeping (Celery beat; the schedule is ``CELERY_BEAT_SCHEDULE`` in settings)."""

from __future__ import annotations

from celery import shared_task

from engine.jobs import recovery


# A sweep is a few queries; a stuck one must not hold the default queue's only worker for long.
@shared_task(
    name="workers.recover_orphaned_jobs",
    ignore_result=True,
    soft_time_limit=2 * 60,
    time_limit=3 * 60,
)
def recover_orphaned_jobs() -> dict[str, list[int]]:
    return recovery.do_recover_orphaned_jobs()
