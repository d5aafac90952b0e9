"""Who may review what, the review queue, and leasing masklets to reviewers."""

from __future__ import annotations

from django.db import transaction
from django.db.models import QuerySet

from engine.accounts.access import AccessDenied, masklets_for_user, project_role, projects_for_user
from engine.errors import NotFound
from engine.models import Masklet, MaskletRevision, Project, Role, User
from engine.quality.triage import order_by_failure
from engine.review import leases

REVIEW_ROLES = (Role.REVIEWER, Role.MANAGER)


def can_review(user: User, project: Project) -> bool:
    return project_role(user, project) in REVIEW_ROLES


def authored_upto(user: User, revision: MaskletRevision) -> bool:
    """Did ``user`` write ``revision`` or any revision it was built on?"""
    return MaskletRevision.objects.filter(
        masklet_id=revision.masklet_id, number__lte=revision.number, author=user
    ).exists()


def access_masklet(user: User, masklet_id: int) -> Masklet:
    """A masklet of a project the user belongs to (NotFound otherwise)."""
    try:
        return masklets_for_user(user).select_related("video", "video__project").get(pk=masklet_id)
    except Masklet.DoesNotExist:
        raise NotFound("No such masklet") from None


def review_queue(user: User, project: Project | None = None) -> QuerySet[Masklet]:
    """Submitted masklets ``user`` may review: likely failures first once the project has a
    trained quality estimator (engine.quality.triage), else oldest first.

    Only projects where the user reviews or manages; never masklets with a revision the user
    wrote; never masklets another reviewer holds an unexpired lease on.
    """
    if user.is_site_admin:
        reviewable = projects_for_user(user)
    else:
        reviewable = Project.objects.filter(
            memberships__user=user, memberships__role__in=REVIEW_ROLES
        )
    queue = Masklet.objects.filter(
        status=Masklet.Status.SUBMITTED,
        current_revision__isnull=False,
        video__project__in=reviewable,
    )
    if project is not None:
        queue = queue.filter(video__project=project)
    queue = (
        queue.exclude(pk__in=MaskletRevision.objects.filter(author=user).values("masklet_id"))
        .exclude(pk__in=leases.leased_by_others(user).values("pk"))
        .select_related("video", "video__project", "current_revision")
    )
    return order_by_failure(queue)


def do_take_next_review(user: User, project: Project) -> Masklet | None:
    """Lease the next masklet of the project's queue to ``user``; None when the queue is empty.

    A reviewer holding an unexpired lease gets that masklet back first. Locks each candidate
    masklet row and re-checks it, so two reviewers taking work at once get different masklets.
    """
    if not can_review(user, project):
        raise AccessDenied("Only the project's reviewers and managers review masklets")
    held = (
        leases.active_review_leases()
        .filter(
            user=user, masklet__video__project=project, masklet__status=Masklet.Status.SUBMITTED
        )
        .values_list("masklet_id", flat=True)
        .first()
    )
    candidates = ([held] if held else []) + list(
        review_queue(user, project).values_list("pk", flat=True)[:50]
    )
    for masklet_id in candidates:
        with transaction.atomic():
            masklet = Masklet.objects.select_for_update().filter(pk=masklet_id).first()
            if masklet is None or masklet.status != Masklet.Status.SUBMITTED:
                continue
            if leases.leased_by_others(user).filter(pk=masklet_id).exists():
                continue
            leases.do_lease_review(user, masklet)
            return masklet
    return None


@transaction.atomic
def do_open_review(user: User, masklet: Masklet) -> bool:
    """A reviewer opened a masklet directly: lease it to them unless another reviewer holds it.

    Locks the masklet row. Returns whether the caller now holds the lease.
    """
    locked = Masklet.objects.select_for_update().get(pk=masklet.pk)
    if locked.status != Masklet.Status.SUBMITTED:
        return False
    if leases.leased_by_others(user).filter(pk=locked.pk).exists():
        return False
    leases.do_lease_review(user, locked)
    return True
