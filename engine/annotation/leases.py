"""The annotators' queue: leases on videos to annotate and on masklets sent back to fix.

A lease is an :class:`~engine.models.Assignment` of kind ``annotate`` (a whole video) or
``fix`` (one masklet a reviewer found unsatisfactory) in state ``leased`` with a
``lease_expires_at``. Taking the next work item hands out, in order: the caller's own lease
still in force (taking is idempotent), then the oldest open fix sent back to them (or to an
annotator who has left the project), then the oldest ready video that nobody holds and whose
annotation is not done. A lease that is not renewed expires and the work returns to the queue:
an annotate lease is cancelled, a fix lease becomes open again for its annotator.

Locking: taking locks the candidate row (the video, or the fix assignment) with
``select_for_update(skip_locked=True)`` and re-checks it, so two annotators taking work at once
never get the same item; renew, release and finish lock the assignment row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from engine.accounts.access import AccessDenied, project_role, projects_for_user
from engine.errors import Conflict, NotFound
from engine.models import Assignment, Masklet, Membership, Project, Role, User, Video

ANNOTATE_ROLES = (Role.ANNOTATOR, Role.MANAGER)
LEASE_KINDS = (Assignment.Kind.ANNOTATE, Assignment.Kind.FIX)
#: How many queue candidates one take looks at before answering "nothing to do".
CANDIDATES = 50


@dataclass(frozen=True)
class AnnotationLeaseConfig:
    """How long an annotator holds a video (or a fix) without saving or renewing."""

    lease: timedelta = timedelta(minutes=30)


DEFAULT_CONFIG = AnnotationLeaseConfig()


class NotLeaseHolder(Conflict):
    """The lease is not (or no longer) the caller's (409)."""


def can_annotate(user: User, project: Project) -> bool:
    return project_role(user, project) in ANNOTATE_ROLES


def check_annotator(user: User, project: Project) -> None:
    if not can_annotate(user, project):
        raise AccessDenied("Only the project's annotators and managers annotate videos")


def _lock(queryset: QuerySet[Assignment]) -> QuerySet[Assignment]:
    # SQLite has no row locks (its IMMEDIATE transactions serialize writers instead).
    if connection.features.has_select_for_update_skip_locked:
        return queryset.select_for_update(skip_locked=True, of=("self",))
    return queryset.select_for_update()


def active_leases(now: datetime | None = None) -> QuerySet[Assignment]:
    """Annotate and fix leases in force."""
    return Assignment.objects.filter(
        kind__in=LEASE_KINDS,
        state=Assignment.State.LEASED,
        lease_expires_at__gt=now or timezone.now(),
    )


def annotation_leases_for_project(project: Project) -> QuerySet[Assignment]:
    """Who holds what in the project: every annotate and fix lease in force, oldest first."""
    return (
        active_leases()
        .filter(video__project=project)
        .select_related("user", "video", "masklet")
        .order_by("created_at", "id")
    )


def leases_visible_to(user: User, project: Project) -> QuerySet[Assignment]:
    """Managers see every lease of the project; everyone else sees their own."""
    leases = annotation_leases_for_project(project)
    if project_role(user, project) == Role.MANAGER:
        return leases
    return leases.filter(user=user)


def access_lease(user: User, assignment_id: int) -> Assignment:
    """An annotate or fix assignment the caller holds, or any of a project they manage (404
    otherwise, so nobody learns about other annotators' work)."""
    found = (
        Assignment.objects.filter(pk=assignment_id, kind__in=LEASE_KINDS)
        .filter(video__project__in=projects_for_user(user))
        .select_related("user", "video", "video__project", "masklet")
        .first()
    )
    if found is None:
        raise NotFound("No such lease")
    if found.user_id != user.pk and project_role(user, found.video.project) != Role.MANAGER:
        raise NotFound("No such lease")
    return found


def open_fixes_for(user: User, project: Project) -> QuerySet[Assignment]:
    """Open fix assignments of the project the user may take: theirs, unassigned ones, and
    those of annotators who have left the project."""
    annotating = Membership.objects.filter(project=project, role__in=ANNOTATE_ROLES)
    return (
        Assignment.objects.filter(
            kind=Assignment.Kind.FIX,
            state=Assignment.State.OPEN,
            video__project=project,
            masklet__status=Masklet.Status.NEEDS_FIX,
        )
        .filter(
            Q(user=user)
            | Q(user__isnull=True)
            # The annotator it was sent back to has left the project or was deactivated.
            | Q(user__is_active=False)
            | ~Q(user__in=annotating.values("user_id"))
        )
        .order_by("created_at", "id")
    )


def videos_to_annotate(user: User, project: Project) -> QuerySet[Video]:
    """Ready videos of the project that still need work and that nobody else holds."""
    held = active_leases().exclude(user=user).values("video_id")
    done = Assignment.objects.filter(
        kind=Assignment.Kind.ANNOTATE, state=Assignment.State.DONE
    ).values("video_id")
    return (
        Video.objects.filter(project=project, status=Video.Status.READY, frame_count__gt=0)
        .exclude(pk__in=held)
        .exclude(pk__in=done)
        .order_by("created_at", "id")
    )


def _own_lease(user: User, project: Project) -> Assignment | None:
    # Past its expiry but not yet swept, a lease nobody else took is still the caller's: taking
    # a video cancels the expired lease on it, and a leased fix is never taken by another.
    return (
        Assignment.objects.filter(
            kind__in=LEASE_KINDS, state=Assignment.State.LEASED, user=user, video__project=project
        )
        .order_by("created_at", "id")
        .first()
    )


def do_take_next_video(
    user: User, project: Project, config: AnnotationLeaseConfig = DEFAULT_CONFIG
) -> Assignment | None:
    """Lease the caller their next work item of the project; None when the queue is empty.

    Order: the caller's own lease in force (renewed), an open fix (see :func:`open_fixes_for`),
    a ready video (see :func:`videos_to_annotate`). Each candidate is taken in its own
    transaction with its row locked and re-checked.
    """
    check_annotator(user, project)
    with transaction.atomic():
        own = _own_lease(user, project)
        if own is not None:
            own.lease_expires_at = timezone.now() + config.lease
            own.save(update_fields=["lease_expires_at"])
            return own
    for fix_id in list(open_fixes_for(user, project).values_list("pk", flat=True)[:CANDIDATES]):
        taken = _take_fix(user, project, fix_id, config)
        if taken is not None:
            return taken
    for video_id in list(
        videos_to_annotate(user, project).values_list("pk", flat=True)[:CANDIDATES]
    ):
        taken = _take_video(user, project, video_id, config)
        if taken is not None:
            return taken
    return None


@transaction.atomic
def _take_fix(
    user: User, project: Project, fix_id: int, config: AnnotationLeaseConfig
) -> Assignment | None:
    fix = _lock(Assignment.objects.filter(pk=fix_id)).first()
    if fix is None or not open_fixes_for(user, project).filter(pk=fix_id).exists():
        return None
    if active_leases().filter(video_id=fix.video_id).exclude(user=user).exists():
        return None
    fix.state = Assignment.State.LEASED
    fix.user = user
    fix.lease_expires_at = timezone.now() + config.lease
    fix.save(update_fields=["state", "user", "lease_expires_at"])
    return fix


@transaction.atomic
def _take_video(
    user: User, project: Project, video_id: int, config: AnnotationLeaseConfig
) -> Assignment | None:
    locked = Video.objects.filter(pk=video_id)
    if connection.features.has_select_for_update_skip_locked:
        locked = locked.select_for_update(skip_locked=True)
    else:
        locked = locked.select_for_update()
    if locked.first() is None or not videos_to_annotate(user, project).filter(pk=video_id).exists():
        return None
    # A lease that expired before the sweep ran goes back to the queue here.
    Assignment.objects.filter(
        kind=Assignment.Kind.ANNOTATE, state=Assignment.State.LEASED, video_id=video_id
    ).update(state=Assignment.State.CANCELLED)
    return Assignment.objects.create(
        kind=Assignment.Kind.ANNOTATE,
        state=Assignment.State.LEASED,
        user=user,
        video_id=video_id,
        lease_expires_at=timezone.now() + config.lease,
    )


def _locked_lease(assignment: Assignment) -> Assignment:
    return (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("video", "video__project")
        .get(pk=assignment.pk)
    )


def _check_holder(user: User, lease: Assignment) -> None:
    if lease.kind not in LEASE_KINDS:
        raise NotFound("No such lease")
    if lease.state != Assignment.State.LEASED or lease.user_id != user.pk:
        raise NotLeaseHolder("You no longer hold this lease; take the next video again")


def check_lease_in_force(user: User, lease: Assignment) -> None:
    """:class:`NotLeaseHolder` unless ``user`` holds ``lease`` and it has not expired (the
    expiry sweep may not have run yet). Reads nothing more than the loaded row."""
    _check_holder(user, lease)
    if lease.lease_expires_at is None or lease.lease_expires_at <= timezone.now():
        raise NotLeaseHolder("You no longer hold this lease; take the next video again")


@transaction.atomic
def do_renew_lease(
    user: User, assignment: Assignment, config: AnnotationLeaseConfig = DEFAULT_CONFIG
) -> Assignment:
    """Extend the caller's lease. Locks the assignment row; :class:`NotLeaseHolder` when the
    lease was released, expired and taken back, finished, or is someone else's."""
    lease = _locked_lease(assignment)
    _check_holder(user, lease)
    lease.lease_expires_at = timezone.now() + config.lease
    lease.save(update_fields=["lease_expires_at"])
    return lease


def _return_to_queue(lease: Assignment) -> None:
    """An annotate lease is cancelled (the video is free again); a fix goes back to open."""
    if lease.kind == Assignment.Kind.FIX:
        lease.state = Assignment.State.OPEN
    else:
        lease.state = Assignment.State.CANCELLED
    lease.lease_expires_at = None
    lease.save(update_fields=["state", "lease_expires_at"])


@transaction.atomic
def do_release_lease(user: User, assignment: Assignment) -> Assignment:
    """Give the work back to the queue: the holder, or a manager of the project releasing
    someone else's lease. Locks the assignment row. Drafts stay with their masklets."""
    lease = _locked_lease(assignment)
    if lease.user_id != user.pk and project_role(user, lease.video.project) != Role.MANAGER:
        raise AccessDenied("Only the holder or a manager of the project may release a lease")
    if lease.kind not in LEASE_KINDS or lease.state != Assignment.State.LEASED:
        raise NotLeaseHolder(f"this lease is {lease.state}, not held")
    _return_to_queue(lease)
    return lease


def do_expire_annotation_leases(now: datetime | None = None) -> int:
    """Return every annotate and fix lease past its expiry to the queue; how many."""
    expired_ids = list(
        Assignment.objects.filter(
            kind__in=LEASE_KINDS,
            state=Assignment.State.LEASED,
            lease_expires_at__lte=now or timezone.now(),
        ).values_list("pk", flat=True)
    )
    count = 0
    for assignment_id in expired_ids:
        with transaction.atomic():
            lease = _lock(Assignment.objects.filter(pk=assignment_id)).first()
            # Renewed or released since the scan: leave it alone.
            if lease is None or lease.state != Assignment.State.LEASED:
                continue
            if lease.lease_expires_at and lease.lease_expires_at > (now or timezone.now()):
                continue
            _return_to_queue(lease)
            count += 1
    return count


def holder_lease(user: User, masklet: Masklet) -> Assignment | None:
    """The caller's lease that lets them edit ``masklet``: an annotate lease on its video for a
    draft, the fix lease on it for a masklet sent back by review."""
    leased = Assignment.objects.filter(state=Assignment.State.LEASED, user=user)
    if masklet.status == Masklet.Status.NEEDS_FIX:
        return leased.filter(kind=Assignment.Kind.FIX, masklet=masklet).first()
    return leased.filter(kind=Assignment.Kind.ANNOTATE, video_id=masklet.video_id).first()


@transaction.atomic
def do_finish_video(user: User, assignment: Assignment) -> Assignment:
    """The annotator is done with the video: the annotate assignment is done.

    Locks the assignment row. Refuses (:class:`Conflict`) while the video has objects whose
    drafts are not submitted, so nothing saved is left behind; a fix is finished by submitting
    its masklet instead.
    """
    lease = _locked_lease(assignment)
    _check_holder(user, lease)
    if lease.kind != Assignment.Kind.ANNOTATE:
        raise Conflict("a fix is finished by submitting its masklet")
    pending = list(
        Masklet.objects.filter(video_id=lease.video_id, status=Masklet.Status.DRAFT)
        .order_by("object_id")
        .values_list("object_id", flat=True)
    )
    if pending:
        raise Conflict(
            "submit or delete these objects first: " + ", ".join(str(i) for i in pending)
        )
    lease.state = Assignment.State.DONE
    lease.completed_at = timezone.now()
    lease.save(update_fields=["state", "completed_at"])
    return lease
