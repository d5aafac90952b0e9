"""The queues-and-jobs console: jobs per queue, workers seen, leases held; retry a failed job.

Everything is scoped to the projects the user manages (site admins: every project, and jobs
without a project). Workers are those that claimed a job or hold a model session: each job
row records its worker and heartbeat, so no broker round trip is needed to list them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from engine.accounts.access import projects_for_user
from engine.annotation.leases import active_leases
from engine.errors import Conflict, NotFound, PermissionDenied
from engine.jobs.lifecycle import JOB_TASKS, send_after_commit
from engine.models import Assignment, Job, ModelSession, Project, Role, User
from engine.review.leases import active_review_leases

#: How many finished (failed) jobs each queue lists.
RECENT_FAILED = 20


def managed_projects(user: User) -> QuerySet[Project]:
    if user.is_site_admin:
        return Project.objects.all()
    return projects_for_user(user).filter(memberships__user=user, memberships__role=Role.MANAGER)


def check_console_user(user: User) -> None:
    """Site admins and managers of at least one project see the console."""
    if not user.is_site_admin and not managed_projects(user).exists():
        raise PermissionDenied("The queues page is for project managers and site admins")


def managed_jobs(user: User) -> QuerySet[Job]:
    if user.is_site_admin:
        return Job.objects.all()
    return Job.objects.filter(project__in=managed_projects(user))


def queue_of(kind: str) -> str:
    route = JOB_TASKS.get(kind)
    return route[1] if route else "(no worker)"


@dataclass
class QueueState:
    name: str
    waiting: list[Job] = field(default_factory=list)
    running: list[Job] = field(default_factory=list)
    failed: list[Job] = field(default_factory=list)


def queues(user: User) -> list[QueueState]:
    """Waiting and running jobs, and the latest failed ones, grouped by the queue they use."""
    check_console_user(user)
    jobs = managed_jobs(user).select_related("project", "video", "created_by")
    names = sorted({q for _t, q in JOB_TASKS.values()})
    states = {name: QueueState(name) for name in names}
    active = jobs.filter(status__in=(Job.Status.QUEUED, Job.Status.RUNNING)).order_by("created_at")
    for job in active:
        state = states.setdefault(queue_of(job.kind), QueueState(queue_of(job.kind)))
        (state.waiting if job.status == Job.Status.QUEUED else state.running).append(job)
    for kind in {k for k, _ in Job.Kind.choices}:
        failed = jobs.filter(status=Job.Status.FAILED, kind=kind).order_by("-finished_at", "-id")
        for job in failed[:RECENT_FAILED]:
            states.setdefault(queue_of(kind), QueueState(queue_of(kind))).failed.append(job)
    for state in states.values():
        state.failed.sort(key=lambda j: j.finished_at or j.created_at, reverse=True)
        del state.failed[RECENT_FAILED:]
    return list(states.values())


@dataclass(frozen=True)
class WorkerSeen:
    name: str
    last_seen: datetime | None
    running: int
    sessions: int

    @property
    def alive(self) -> bool:
        stale = timedelta(seconds=settings.JOB_STALE_SECONDS)
        return self.last_seen is not None and timezone.now() - self.last_seen < stale


def workers_seen(user: User, since: timedelta = timedelta(days=1)) -> list[WorkerSeen]:
    """Workers that reported a heartbeat on a visible job or used a model session lately."""
    check_console_user(user)
    after = timezone.now() - since
    rows = (
        managed_jobs(user)
        .exclude(worker="")
        .filter(heartbeat_at__gte=after)
        .values("worker")
        .annotate(
            last=Max("heartbeat_at"), running=Count("id", filter=Q(status=Job.Status.RUNNING))
        )
    )
    seen: dict[str, WorkerSeen] = {
        r["worker"]: WorkerSeen(r["worker"], r["last"], r["running"], 0) for r in rows
    }
    sessions = (
        ModelSession.objects.filter(video__project__in=managed_projects(user), last_used__gte=after)
        .values("worker")
        .annotate(last=Max("last_used"), n=Count("id"))
    )
    for r in sessions:
        known = seen.get(r["worker"])
        last = max(d for d in (r["last"], known.last_seen if known else None) if d)
        seen[r["worker"]] = WorkerSeen(r["worker"], last, known.running if known else 0, r["n"])
    return sorted(seen.values(), key=lambda w: w.last_seen or after, reverse=True)


def leases_held(user: User) -> list[Assignment]:
    """Annotation, fix and review leases in force in the projects the user manages."""
    check_console_user(user)
    projects = managed_projects(user)
    held = (active_leases() | active_review_leases()).filter(video__project__in=projects)
    return list(
        held.select_related("user", "video", "video__project", "masklet").order_by(
            "lease_expires_at", "id"
        )
    )


def access_managed_job(user: User, job_id: int) -> Job:
    """A job of a project the user manages; members who only see it get PermissionDenied."""
    job = Job.objects.filter(pk=job_id).select_related("project").first()
    if job is None:
        raise NotFound("No such job")
    if user.is_site_admin or managed_jobs(user).filter(pk=job_id).exists():
        return job
    if job.project_id is not None and projects_for_user(user).filter(pk=job.project_id).exists():
        raise PermissionDenied("Only the project's managers may retry its jobs")
    raise NotFound("No such job")


@transaction.atomic
def do_retry_job(user: User, job_id: int) -> Job:
    """Send a failed or cancelled job again: back to queued (the next claim is a new attempt,
    so a late message of the old one changes nothing). Only the project's managers and site
    admins may; a job that is queued, running or succeeded is a :class:`Conflict`."""
    job = access_managed_job(user, job_id)
    retried = Job.objects.filter(
        pk=job.pk, status__in=(Job.Status.FAILED, Job.Status.CANCELLED)
    ).update(
        status=Job.Status.QUEUED,
        error="",
        message="retry requested",
        progress=0.0,
        cancel_requested=False,
        finished_at=None,
        heartbeat_at=timezone.now(),
    )
    if not retried:
        raise Conflict(f"Only failed or cancelled jobs can be retried; this one is {job.status}")
    job.refresh_from_db()
    send_after_commit(job)
    return job
