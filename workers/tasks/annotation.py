"""Annotation housekeeping on Celery beat (``CELERY_BEAT_SCHEDULE``; routed to the default queue
by ``CELERY_TASK_ROUTES``)."""

from __future__ import annotations

from celery import shared_task

from engine.annotation import leases


# A sweep is a few queries; a stuck one must not hold the default queue's only worker for long.
@shared_task(
    name="workers.expire_annotation_leases",
    ignore_result=True,
    soft_time_limit=2 * 60,
    time_limit=3 * 60,
)
def expire_annotation_leases() -> int:
    """Return expired annotate and fix leases to the annotators' queue; how many."""
    return leases.do_expire_annotation_leases()
