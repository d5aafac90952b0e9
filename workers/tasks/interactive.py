"""Celery tasks on the ``interactive`` queue: clicks wait for these, so they are short, their
results are kept (request/reply), and a lost one is never redelivered (not ``acks_late``)."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task

from workers.dispatch import direct_queue_name

# A click on a warm session takes well under a second; the limits cover a first click that
# loads the model and replays a long session on CPU.
LIMITS = {"soft_time_limit": 50, "time_limit": 60}


def _where(task: Task) -> tuple[str, str]:
    name = str(task.request.hostname or "")
    return name, direct_queue_name(name) if name else ""


@shared_task(
    name="workers.annotation_prompt",
    bind=True,
    ignore_result=False,
    acks_late=False,
    track_started=True,  # a caller tells a slow click from a dead worker (dispatch.call_task)
    **LIMITS,
)
def annotation_prompt(self: Task, payload: dict[str, Any]) -> dict[str, Any]:
    """One click or box (``engine.annotation.serving.handle_prompt``)."""
    from engine.annotation import serving  # torch and the model load in workers only

    worker, queue = _where(self)
    return serving.handle_prompt(payload, worker=worker, queue=queue)


@shared_task(
    name="workers.annotation_warm", bind=True, ignore_result=True, acks_late=False, **LIMITS
)
def annotation_warm(self: Task, video_id: int, user_id: int) -> int:
    """Embed a leased video's first frames for its annotator (best effort)."""
    from engine.annotation import serving

    worker, queue = _where(self)
    return serving.handle_warm(video_id, user_id, worker=worker, queue=queue)
