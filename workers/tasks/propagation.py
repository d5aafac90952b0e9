"""Celery tasks on the ``propagate`` queue: thin wrappers that load by id and call engine/."""

from __future__ import annotations

from celery import shared_task

from engine import auto_masklets


@shared_task(name="workers.auto_masklets", acks_late=True, ignore_result=True)
def run_auto_masklets(job_id: int) -> None:
    """Automatic masklets for one video (``Job.Kind.AUTO_MASKLETS``); see engine.auto_masklets."""
    auto_masklets.run_auto_masklets_job(job_id)
