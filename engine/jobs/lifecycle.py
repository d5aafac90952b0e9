"""Job rows: every long task is a ``Job`` first, claimed by a worker with a conditional update.

Workers call :func:`claim_job`, then report through :class:`JobReporter` (progress, heartbeat,
cancellation checks) and finish with :func:`finish_job` / :func:`fail_job`. Every write of a
running job is fenced by its ``(id, attempt)``: a worker whose job was given to a newer attempt
(by the recovery sweep, ``engine.jobs.recovery``, or a broker redelivery) changes nothing.
Tasks are sent by *name* after commit (``engine.jobs.dispatch``), so ``engine`` never imports
Celery or ``workers``.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from engine.accounts.access import project_role
from engine.errors import NotFound, PermissionDenied, Unavailable
from engine.jobs.connectivity import DATABASE_GONE, database_lost, wait_for_database
from engine.jobs.dispatch import send_task_on_commit
from engine.models import Job, Role, User

logger = logging.getLogger(__name__)

#: Task name and queue for each job kind that a worker runs. Names are pinned by a test (queued
#: messages use them), which also checks that a registered task carries each one. A kind without
#: a task has no route: :func:`do_create_job` refuses it, so
#: no job waits forever for a task nobody runs.
JOB_TASKS: dict[str, tuple[str, str]] = {
    Job.Kind.INGEST: ("workers.ingest_video", "default"),
    Job.Kind.EXPORT: ("workers.run_export", "default"),
    Job.Kind.IMPORT: ("workers.run_import", "default"),
    Job.Kind.AUTO_MASKLETS: ("workers.auto_masklets", "propagate"),
    Job.Kind.PROPAGATE: ("workers.propagate_masklet", "propagate"),
    Job.Kind.TRAIN: ("workers.train_round", "train"),
}


class NoWorkerForKind(Unavailable):
    """No worker task runs jobs of this kind (yet)."""


class JobCancelled(Exception):
    """Raised inside a running job when its ``cancel_requested`` flag was set."""


class JobSuperseded(Exception):
    """Raised inside a running job whose row this worker no longer holds: a newer attempt owns
    it (or it already ended), so this worker stops and writes nothing more."""


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def job_route(kind: str) -> tuple[str, str]:
    """``(task name, queue)`` of a job kind; :class:`NoWorkerForKind` if no worker runs it."""
    try:
        return JOB_TASKS[kind]
    except KeyError:
        raise NoWorkerForKind(f"No worker runs {kind!r} jobs yet") from None


def do_create_job(kind: str, *, args: dict[str, Any] | None = None, **fields: Any) -> Job:
    """Create a queued job and send its task once the current transaction commits."""
    job_route(kind)  # refuse before writing a row that nothing would ever run
    job = Job.objects.create(kind=kind, args=args or {}, **fields)
    send_after_commit(job)
    return job


def send_after_commit(job: Job) -> None:
    """Send the job's task once the current transaction commits (at once outside one).

    A send the broker refuses (down, restarting) is logged, not raised: the job row is already
    committed, so the request that made it succeeds, and the recovery sweep
    (:mod:`engine.jobs.recovery`) sends the task again once the job has waited
    ``JOB_STALE_SECONDS`` unclaimed."""
    task_name, queue = job_route(job.kind)
    send_task_on_commit(task_name, [job.pk], queue=queue, robust=True)


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


def held_job(job: Job) -> QuerySet[Job]:
    """The job's row while `job` (this worker's attempt) still holds it, else nothing."""
    return Job.objects.filter(pk=job.pk, attempt=job.attempt, status=Job.Status.RUNNING)


class JobReporter:
    """Progress, heartbeat and cancellation for one running job (throttled writes)."""

    def __init__(self, job: Job, *, min_interval: float = 0.5) -> None:
        self.job = job
        self.min_interval = min_interval
        self._last_write = 0.0

    def progress(self, fraction: float, message: str = "", *, force: bool = False) -> None:
        """Record progress and a heartbeat; raises :class:`JobSuperseded` if a newer attempt
        holds the job, :class:`JobCancelled` if a cancel was requested."""
        now = time.monotonic()
        if not force and now - self._last_write < self.min_interval:
            return
        self._last_write = now
        fraction = max(0.0, min(1.0, fraction))
        updated = held_job(self.job).update(
            progress=fraction, message=message[:500], heartbeat_at=timezone.now()
        )
        if not updated:
            raise JobSuperseded(
                f"job {self.job.pk} attempt {self.job.attempt} is no longer this worker's"
            )
        self.job.progress = fraction
        if Job.objects.filter(pk=self.job.pk, cancel_requested=True).exists():
            raise JobCancelled(f"job {self.job.pk} was cancelled")


def finish_job(job: Job, result: dict[str, Any] | None = None) -> bool:
    """Mark this attempt succeeded with `result`; False (nothing written) if it was superseded."""
    now = timezone.now()
    return bool(
        held_job(job).update(
            status=Job.Status.SUCCEEDED,
            progress=1.0,
            message="",  # the last progress message ("stored frame 3/12") is stale now
            result=result or {},
            finished_at=now,
            heartbeat_at=now,
        )
    )


def fail_job(job: Job, error: str, *, cancelled: bool = False) -> bool:
    """End this attempt as failed (or cancelled); False (nothing written) if it was superseded."""
    return bool(
        held_job(job).update(
            status=Job.Status.CANCELLED if cancelled else Job.Status.FAILED,
            message="",
            error=error[:5000],
            finished_at=timezone.now(),
        )
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
    first in both cases (e.g. to discard partial output). A superseded attempt writes nothing
    and skips `on_failure`: the output it would discard is the newer attempt's. A lost database
    connection (a PostgreSQL restart) is not the job's failure: the claim waits for the database
    (up to ``connectivity.WAIT_SECONDS``), and a running job is given back to the queue once it
    answers again (:func:`_give_back_after_database_loss`).
    """
    try:
        job = claim_job(job_id)
    except DATABASE_GONE:
        # the database restarts: a message dropped here would wait for the recovery sweep
        if not wait_for_database():
            raise
        job = claim_job(job_id)
    if job is None:
        current = Job.objects.filter(pk=job_id).values_list("status", "worker").first()
        logger.info("job %s not claimable; its status and worker: %s", job_id, current)
        return
    handled: tuple[type[Exception], ...] = (*expected, JobCancelled)
    try:
        result = work(job, JobReporter(job))
    except JobSuperseded as exc:
        logger.warning("%s; this worker stops", exc)
        return
    except handled as exc:
        _end_failed(job, str(exc), on_failure, cancelled=isinstance(exc, JobCancelled))
        return
    except Exception as exc:
        if isinstance(exc, DATABASE_GONE) and database_lost():
            if _give_back_after_database_loss(job, exc):
                return  # logged; the job is queued again (or failed after its attempts)
        else:
            _end_failed(job, f"{internal_error}: {exc!r}", on_failure)
        raise
    if not finish_job(job, result):
        logger.warning("job %s attempt %s was superseded; result dropped", job.pk, job.attempt)


def _give_back_after_database_loss(job: Job, exc: Exception) -> bool:
    """The job's database connection was lost (e.g. PostgreSQL restarted): not the job's
    fault, so once the database answers again the job goes back to ``queued`` and its task is
    sent again (the next claim is a new attempt), or, after ``JOB_MAX_ATTEMPTS`` attempts, it
    fails with the reason; True then. False if the database stays away: the recovery sweep
    finds the job later."""
    if not wait_for_database():
        logger.warning("job %s: database lost (%r); left to the recovery sweep", job.pk, exc)
        return False
    now = timezone.now()
    if job.attempt >= settings.JOB_MAX_ATTEMPTS:
        error = f"the database connection was lost during each of {job.attempt} attempts: {exc}"
        fail_job(job, error)
        return True
    message = "the database connection was lost; sent again"
    if held_job(job).update(status=Job.Status.QUEUED, heartbeat_at=now, message=message):
        logger.warning(
            "job %s attempt %s: database lost (%r); sent again", job.pk, job.attempt, exc
        )
        send_after_commit(job)
    return True


def _end_failed(
    job: Job,
    message: str,
    on_failure: Callable[[Job, str], None] | None,
    *,
    cancelled: bool = False,
) -> None:
    if not held_job(job).exists():
        logger.warning(
            "job %s attempt %s was superseded; not failing it: %s", job.pk, job.attempt, message
        )
        return
    if on_failure is not None:
        on_failure(job, message)
    fail_job(job, message, cancelled=cancelled)


def check_may_cancel(user: User, job: Job) -> None:
    """The job's creator, the project's managers and site admins may cancel it. Other members
    get :class:`PermissionDenied`; users who cannot see the job get :class:`NotFound`."""
    if user.is_site_admin:
        return
    role = project_role(user, job.project) if job.project is not None else None
    if role is None:
        raise NotFound("No such job")
    if role != Role.MANAGER and job.created_by_id != user.pk:
        raise PermissionDenied("Only the job's creator or the project's managers may cancel it")


def do_request_cancel(user: User, job: Job) -> None:
    """Ask a job to stop: a queued job is cancelled at once, a running one at its next report.
    Checked with :func:`check_may_cancel`."""
    check_may_cancel(user, job)
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    Job.objects.filter(pk=job.pk, status=Job.Status.QUEUED).update(
        status=Job.Status.CANCELLED, finished_at=timezone.now()
    )
