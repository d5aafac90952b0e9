"""Celery tasks on the ``propagate`` queue: thin wrappers that load by id and call engine/."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="workers.auto_masklets", acks_late=True, ignore_result=True)
def run_auto_masklets(job_id: int) -> None:
    """Automatic masklets for one video (``Job.Kind.AUTO_MASKLETS``); see auto_masklets.generate."""
    # Imported here: it pulls in torch and the model, which processes that only register tasks
    # (the web server, default-queue workers) need not load.
    from engine.auto_masklets.generate import run_auto_masklets_job

    run_auto_masklets_job(job_id)
