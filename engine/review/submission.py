"""Sending a masklet to the review queue, and who may do it."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Q

from engine.accounts.access import AccessDenied, project_role
from engine.masklets.revisions import StaleRevision
from engine.models import Assignment, Masklet, MaskletRevision, Role, User
from engine.review import leases
from engine.review.errors import NotReviewable


def may_submit(user: User, masklet: Masklet) -> bool:
    """The masklet's author (of its current or first revision), a manager of its project (site
    admins included), or the annotator holding a pending fix of it."""
    role = project_role(user, masklet.video.project)
    if role == Role.MANAGER:
        return True
    if role is None:
        return False
    authored = MaskletRevision.objects.filter(
        Q(number=1) | Q(pk=masklet.current_revision_id), masklet=masklet, author=user
    )
    if authored.exists():
        return True
    return Assignment.objects.filter(
        kind=Assignment.Kind.FIX,
        masklet=masklet,
        user=user,
        state__in=[Assignment.State.OPEN, Assignment.State.LEASED],
    ).exists()


@transaction.atomic
def do_submit_masklet(
    masklet: Masklet, user: User, *, base_revision_id: int | None = None
) -> Masklet:
    """Send a draft (or needs-fix) masklet to the review queue.

    Locks the masklet row. Only :func:`may_submit` users may (:class:`AccessDenied`);
    ``base_revision_id``, when given, must be the current revision (:class:`StaleRevision`).
    Pending fix assignments of the masklet are closed.
    """
    locked = (
        Masklet.objects.select_for_update(of=("self",))
        .select_related("video__project")
        .get(pk=masklet.pk)
    )
    if not may_submit(user, locked):
        raise AccessDenied(
            "Only the masklet's author, its fix assignee or a project manager may submit it"
        )
    if base_revision_id is not None and locked.current_revision_id != base_revision_id:
        raise StaleRevision(
            f"masklet {locked.pk} is at revision {locked.current_revision_id}, "
            f"not {base_revision_id}"
        )
    if locked.current_revision_id is None:
        raise NotReviewable("the masklet has no revision to submit")
    if locked.status not in (Masklet.Status.DRAFT, Masklet.Status.NEEDS_FIX):
        raise NotReviewable(f"a {locked.status} masklet cannot be submitted")
    leases.close_fix_assignments(locked)
    locked.status = Masklet.Status.SUBMITTED
    locked.save(update_fields=["status", "updated_at"])
    masklet.status = locked.status
    return locked
