"""Celery tasks on the ``interactive`` queue: clicks wait for these, so they are short, their
results are kept (request/reply), and a lost one is never redelivered (not ``acks_late``)."""

from __future__ import annotations

import gc
import logging
import time
from typing import Any

from celery import Task, shared_task
from celery.signals import worker_process_init, worker_ready

from workers.dispatch import direct_queue_name, send_task

logger = logging.getLogger(__name__)

#: Workers on these queues run the model; they load it when they start (``model_warm``).
MODEL_QUEUES = frozenset({"interactive", "propagate"})

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
def annotation_warm(
    self: Task,
    video_id: int,
    user_id: int,
    frames: list[int] | None = None,
    sent_at: float | None = None,
    object_id: int | None = None,
) -> int:
    """Embed a leased video's first frames, or ``frames``, for its annotator, and prepare a
    correction of ``object_id`` there (best effort; ``engine.annotation.warmups``)."""
    from engine.annotation import warmups

    worker, queue = _where(self)
    return warmups.handle_warm(
        video_id,
        user_id,
        worker=worker,
        queue=queue,
        frames=frames,
        sent_at=sent_at,
        object_id=object_id,
    )


@shared_task(name="workers.model_warm", ignore_result=True, acks_late=False, **LIMITS)
def model_warm() -> str:
    """Import torch and the model code and load the serving model into this process's cache,
    so that the first click or propagation does not wait for them (best effort: with no model
    configured it only logs). Returns the loaded config, or "" with none."""
    from engine.annotation import propagation, serving  # noqa: F401  (torch, the model code)
    from engine.inference import registry

    started = time.monotonic()
    try:
        loaded = registry.load_model()
    except registry.ModelNotConfigured as exc:
        logger.info("model warm-up skipped: %s", exc)
        return ""
    finally:
        freeze_long_lived_objects()  # the imports and the model stay for the process's life
    logger.info(
        "model warm-up: %s loaded in %.2f s", loaded.spec.config, time.monotonic() - started
    )
    return loaded.spec.config


@worker_ready.connect
def warm_model_at_start(sender: Any = None, **_: Any) -> None:
    """A worker that consumes a model queue sends itself ``model_warm`` (its direct queue)
    once it is ready: the import and load (~2 s for hiera_t on a 2-core machine) happen while
    it is idle, not in its first job. With several pool processes, one of them warms."""
    if sender is None:
        return
    selected = sender.app.amqp.queues.consume_from or sender.app.amqp.queues
    if not MODEL_QUEUES & set(selected):
        return
    try:
        send_task("workers.model_warm", [], direct_queue_name(sender.hostname))
    except Exception:  # noqa: BLE001  a warm-up never stops a worker from starting
        logger.warning("could not send the model warm-up task", exc_info=True)


@worker_process_init.connect
def freeze_long_lived_objects(**_: Any) -> None:
    """Move the objects a pool process holds now out of the garbage collector's generations.

    Every pool process starts with its imports; a model worker's hold ~300,000 long-lived
    objects (Django, the task modules, torch), which a full collection scans (125 ms on a
    2-core machine), and one falls every few hundred requests, in the middle of a click. Frozen,
    they are never scanned again (they still go when their last reference does; only cycles
    among them would stay); garbage made later is collected as before. Called when a pool
    process starts and after the model warm-up (``gc.freeze``; the solo pool has no pool
    processes, only the warm-up)."""
    gc.freeze()
