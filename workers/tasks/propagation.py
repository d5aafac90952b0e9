"""Celery tasks on the ``propagate`` queue: thin wrappers that load by id and call engine/."""

from __future__ import annotations

from celery import shared_task


# Hours: a long video on CPU. Both limits stay below the Redis visibility timeout (6 h), or the
# broker would redeliver a message whose task is still running.
@shared_task(
    name="workers.auto_masklets",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=4 * 3600,
    time_limit=4 * 3600 + 10 * 60,
)
def run_auto_masklets(job_id: int) -> None:
    """Automatic masklets for one video (``Job.Kind.AUTO_MASKLETS``); see auto_masklets.generate."""
    # Imported here: it pulls in torch and the model, which processes that only register tasks
    # (the web server, default-queue workers) need not load.
    from engine.auto_masklets.generate import run_auto_masklets_job

    run_auto_masklets_job(job_id)


# Hours: a long video on CPU, under the Redis visibility timeout (6 h) as above.
@shared_task(
    name="workers.propagate_masklet",
    acks_late=True,
    ignore_result=True,
    soft_time_limit=2 * 3600,
    time_limit=2 * 3600 + 10 * 60,
)
def propagate_masklet(job_id: int) -> None:
    """Propagate one object through its video (``Job.Kind.PROPAGATE``); see
    engine.annotation.propagation."""
    from engine.annotation.propagation import run_propagation_job

    run_propagation_job(job_id)
