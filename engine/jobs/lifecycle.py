"""Job rows: every long task is a ``Job`` first, claimed by a worker with a conditional update.

Workers call :func:`claim_job`, then report through :class:`JobReporter` (progress, heartbeat,
cancellation checks) and finish with :func:`finish_job` / :func:`fail_job`. Enqueueing uses the
task *name* (``send_task``) after the surrounding transaction commits, so ``engine`` never imports
``workers``.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from engine.models import Job

logger = logging.getLogger(__name__)

#: Task name and queue for each job kind (names are pinned by a test: queued messages use them).
JOB_TASKS: dict[str, tuple[str, str]] = {
    Job.Kind.INGEST: ("workers.ingest_video", "default"),
    Job.Kind.EXPORT: ("workers.run_export", "default"),
    Job.Kind.IMPORT: ("workers.run_import", "default"),
    Job.Kind.PROPAGATE: ("workers.propagate", "propagate"),
    Job.Kind.AUTO_MASKLETS: ("workers.auto_masklets", "propagate"),
    Job.Kind.TRAIN: ("workers.train_round", "train"),
}


class JobCancelled(Exception):
    """Raised inside a running job when its ``cancel_requested`` flag was set."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def do_create_job(kind: str, *, args: dict[str, Any] | None = None, **fields: Any) -> Job:
    """Create a queued job and send its task once the current transaction commits."""
    job = Job.objects.create(kind=kind, args=args or {}, **fields)
    send_after_commit(job)
    return job


def send_after_commit(job: Job) -> None:
    """Send the job's task once the current transaction commits (at once outside one)."""
    transaction.on_commit(functools.partial(enqueue_job, job.pk, job.kind))


def enqueue_job(job_id: int, kind: str) -> None:
    from celery import current_app  # Celery's app registry; workers/celery.py configures it

    task_name, queue = JOB_TASKS[kind]
    current_app.send_task(task_name, args=[job_id], queue=queue)


def claim_job(job_id: int) -> Job | None:
    """Move a job from queued to running; None if another worker has it or it is finished.

    A job found ``running`` with a heartbeat older than ``JOB_STALE_SECONDS`` belonged to a worker
    that died (the broker redelivered its message), so it is claimed again as a new attempt.
    """
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.JOB_STALE_SECONDS)
    claimable = Q(status=Job.Status.QUEUED) | Q(
        status=Job.Status.RUNNING, heartbeat_at__lt=stale_before
    )
    updated = Job.objects.filter(claimable, pk=job_id, cancel_requested=False).update(
        status=Job.Status.RUNNING,
        attempt=F("attempt") + 1,
        worker=worker_name(),
        heartbeat_at=now,
        started_at=now,
        error="",
    )
    if not updated:
        Job.objects.filter(pk=job_id, status=Job.Status.QUEUED, cancel_requested=True).update(
            status=Job.Status.CANCELLED, finished_at=now
        )
        return None
    return Job.objects.get(pk=job_id)


class JobReporter:
    """Progress, heartbeat and cancellation for one running job (throttled writes)."""

    def __init__(self, job: Job, *, min_interval: float = 0.5) -> None:
        self.job = job
        self.min_interval = min_interval
        self._last_write = 0.0

    def progress(self, fraction: float, message: str = "", *, force: bool = False) -> None:
        import time

        now = time.monotonic()
        if not force and now - self._last_write < self.min_interval:
            return
        self._last_write = now
        fraction = max(0.0, min(1.0, fraction))
        Job.objects.filter(pk=self.job.pk).update(
            progress=fraction, message=message[:500], heartbeat_at=timezone.now()
        )
        self.job.progress = fraction
        if Job.objects.filter(pk=self.job.pk, cancel_requested=True).exists():
            raise JobCancelled(f"job {self.job.pk} was cancelled")


def finish_job(job: Job, result: dict[str, Any] | None = None) -> None:
    Job.objects.filter(pk=job.pk, status=Job.Status.RUNNING).update(
        status=Job.Status.SUCCEEDED,
        progress=1.0,
        result=result or {},
        finished_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )


def fail_job(job: Job, error: str, *, cancelled: bool = False) -> None:
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.CANCELLED if cancelled else Job.Status.FAILED,
        error=error[:5000],
        finished_at=timezone.now(),
    )


def run_job(
    job_id: int,
    work: Callable[[Job, JobReporter], dict[str, Any]],
    *,
    expected: tuple[type[Exception], ...],
    internal_error: str,
    on_failure: Callable[[Job, str], None] | None = None,
) -> None:
    """The worker side of a job: claim it, run `work(job, reporter)`, finish with its result.

    A job another worker holds (or that has ended) is logged and left alone. `expected` errors
    and `JobCancelled` end the job with their message; anything else ends it with
    "`internal_error`: exc!r" and is re-raised for Celery's log. `on_failure(job, message)` runs
    first in both cases (e.g. to discard partial output).
    """
    job = claim_job(job_id)
    if job is None:
        current = Job.objects.filter(pk=job_id).values_list("status", "worker").first()
        logger.info("job %s not claimable; its status and worker: %s", job_id, current)
        return
    handled: tuple[type[Exception], ...] = (*expected, JobCancelled)
    try:
        result = work(job, JobReporter(job))
    except handled as exc:
        if on_failure is not None:
            on_failure(job, str(exc))
        fail_job(job, str(exc), cancelled=isinstance(exc, JobCancelled))
        return
    except Exception as exc:
        message = f"{internal_error}: {exc!r}"
        if on_failure is not None:
            on_failure(job, message)
        fail_job(job, message)
        raise
    finish_job(job, result)


def do_recover_orphaned_jobs() -> dict[str, list[int]]:
    """Find jobs whose worker or task message was lost and put them back on their way.

    Runs on a schedule (Celery beat, ``workers.recover_orphaned_jobs``); safe to run twice,
    since a resent job is only ever claimed once (:func:`claim_job` is a conditional update).

    - ``running`` with a heartbeat older than ``JOB_STALE_SECONDS``: its worker died or hangs
      (the filesystem broker never redelivers; Redis only after its visibility timeout). A
      cancel request ends it as cancelled; after ``JOB_MAX_ATTEMPTS`` attempts it fails (a job
      that keeps killing its worker); otherwise it goes back to ``queued`` and its task is sent
      again (the next claim is a new attempt).
    - ``queued`` and unclaimed for ``JOB_STALE_SECONDS`` (since it was created or last resent)
      while no job of its queue reported in that time: its message never reached a worker
      (e.g. the broker was down when it was created). Its task is sent again. A busy queue
      keeps its backlog: those messages are waiting, not lost.

    Returns the ids by what was done: ``{"resent": [...], "failed": [...], "cancelled": [...]}``.
    """
    now = timezone.now()
    stale_before = now - timedelta(seconds=settings.JOB_STALE_SECONDS)
    done: dict[str, list[int]] = {"resent": [], "failed": [], "cancelled": []}
    _requeue_jobs_of_lost_workers(now, stale_before, done)
    _mark_lost_messages_for_resending(now, stale_before, done)
    if any(done.values()):
        logger.warning("orphaned jobs recovered: %s", done)
    return done


def _requeue_jobs_of_lost_workers(
    now: datetime, stale_before: datetime, done: dict[str, list[int]]
) -> None:
    """Running jobs without a recent heartbeat: cancelled, failed or back to queued."""
    dead = Job.objects.filter(status=Job.Status.RUNNING, heartbeat_at__lt=stale_before)
    for job in dead.order_by("pk"):
        worker = job.worker or "unknown"
        fields: dict[str, Any]
        if job.cancel_requested:
            outcome = "cancelled"
            fields = {"status": Job.Status.CANCELLED, "finished_at": now}
        elif job.attempt >= settings.JOB_MAX_ATTEMPTS:
            outcome = "failed"
            error = f"its worker was lost during each of {job.attempt} attempts (last: {worker})"
            fields = {"status": Job.Status.FAILED, "error": error, "finished_at": now}
        else:
            # back to queued (heartbeat_at: when it was resent); the resent message's claim
            # is the next attempt
            outcome = "resent"
            message = f"worker {worker} was lost; sent again"[:500]
            fields = {"status": Job.Status.QUEUED, "heartbeat_at": now, "message": message}
        if dead.filter(pk=job.pk).update(**fields):
            done[outcome].append(job.pk)
            if outcome == "resent":
                send_after_commit(job)


def _mark_lost_messages_for_resending(
    now: datetime, stale_before: datetime, done: dict[str, list[int]]
) -> None:
    """Queued jobs unclaimed for the stale period on an idle queue: resend, at most once per
    period (``heartbeat_at`` of a queued job is when its task was last resent)."""
    busy_queues = {
        JOB_TASKS[kind][1]
        for kind in Job.objects.filter(
            status=Job.Status.RUNNING, heartbeat_at__gte=stale_before
        ).values_list("kind", flat=True)
    }
    waiting = Job.objects.filter(
        Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at=None, created_at__lt=stale_before),
        status=Job.Status.QUEUED,
        cancel_requested=False,
    )
    for job in waiting.order_by("pk"):
        if JOB_TASKS[job.kind][1] not in busy_queues and waiting.filter(pk=job.pk).update(
            heartbeat_at=now
        ):
            done["resent"].append(job.pk)
            send_after_commit(job)


def do_request_cancel(job: Job) -> None:
    """Ask a job to stop: a queued job is cancelled at once, a running one at its next report."""
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(
        status=Job.Status.CANCELLED, finished_at=timezone.now()
    )
