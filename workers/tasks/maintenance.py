"""Scheduled housekeeping (Celery beat; the schedule is ``CELERY_BEAT_SCHEDULE`` in settings)."""

from __future__ import annotations

from celery import shared_task

from engine.jobs import lifecycle


@shared_task(name="workers.recover_orphaned_jobs", ignore_result=True)
def recover_orphaned_jobs() -> dict[str, list[int]]:
    return lifecycle.do_recover_orphaned_jobs()
