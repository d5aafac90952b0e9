"""Recovery of jobs whose worker or task message was lost (the Celery beat sweep).

Runs on a schedule (``workers.recover_orphaned_jobs``); see :func:`do_recover_orphaned_jobs`.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from engine.jobs.lifecycle import JOB_TASKS, send_after_commit
from engine.models import Job
from engine.videos.ingest import fail_abandoned_ingest

logger = logging.getLogger(__name__)


def do_recover_orphaned_jobs() -> dict[str, list[int]]:
    """Find jobs whose worker or task message was lost and put them back on their way.

    Safe to run twice, since a resent job is only ever claimed once
    (:func:`engine.jobs.lifecycle.claim_job` is a conditional update).

    - ``running`` with a heartbeat older than ``JOB_STALE_SECONDS``: its worker died or hangs
      (the filesystem broker never redelivers; Redis only after its visibility timeout). A
      cancel request ends it as cancelled; after ``JOB_MAX_ATTEMPTS`` attempts it fails (a job
      that keeps killing its worker); otherwise it goes back to ``queued`` and its task is sent
      again (the next claim is a new attempt).
    - ``queued`` and unclaimed for ``JOB_STALE_SECONDS`` (since it was created or last resent)
      while no job of its queue reported in that time: its message never reached a worker
      (e.g. the broker was down when it was created). Its task is sent again. A busy queue
      keeps its backlog: those messages are waiting, not lost.
    - Either, of a kind no worker runs (no route in ``JOB_TASKS``): it fails, instead of being
      resent forever to a task nobody registers.

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
        elif job.kind not in JOB_TASKS:
            outcome = "failed"
            fields = _no_route_failure(job, now)
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
        _apply(dead, job, fields, outcome, done)


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
        if kind in JOB_TASKS
    }
    waiting = Job.objects.filter(
        Q(heartbeat_at__lt=stale_before) | Q(heartbeat_at=None, created_at__lt=stale_before),
        status=Job.Status.QUEUED,
        cancel_requested=False,
    )
    for job in waiting.order_by("pk"):
        if job.kind not in JOB_TASKS:
            _apply(waiting, job, _no_route_failure(job, now), "failed", done)
        elif JOB_TASKS[job.kind][1] not in busy_queues:
            _apply(waiting, job, {"heartbeat_at": now}, "resent", done)


def _no_route_failure(job: Job, now: datetime) -> dict[str, Any]:
    error = f"no worker runs {job.kind!r} jobs"
    return {"status": Job.Status.FAILED, "error": error, "finished_at": now}


def _apply(
    candidates: QuerySet[Job],
    job: Job,
    fields: dict[str, Any],
    outcome: str,
    done: dict[str, list[int]],
) -> None:
    """Write `fields` if the job is still a candidate (another sweep may have handled it), then
    record the outcome and resend the task for ``"resent"``."""
    if candidates.filter(pk=job.pk).update(**fields):
        done[outcome].append(job.pk)
        if outcome == "failed" and job.kind == Job.Kind.INGEST:
            fail_abandoned_ingest(job, fields["error"])
        if outcome == "resent":
            send_after_commit(job)
