"""Fix assignments: who may fix a masklet a reviewer found unsatisfactory, and the resubmission
of the corrected frames as a new revision."""

from __future__ import annotations

from collections.abc import Mapping

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from engine.accounts.access import AccessDenied, project_role, projects_for_user
from engine.errors import NotFound
from engine.masklets.revisions import FrameMask, do_save_revision
from engine.models import Assignment, Masklet, MaskletRevision, Project, Review, Role, User
from engine.review.errors import InvalidReview, NotReviewable

FIX_ROLES = (Role.ANNOTATOR, Role.MANAGER)
#: One message whether the id is unknown, of another project or of a non-annotator, so the
#: answer never tells which ids exist elsewhere.
FIX_ASSIGNEE_REFUSED = "the fix assignee must be an annotator or manager of this project"


def may_fix(user: User, project: Project) -> bool:
    return project_role(user, project) in FIX_ROLES


def fixers(project: Project) -> QuerySet[User]:
    """Members of ``project`` a reviewer may hand a fix to."""
    return User.objects.filter(
        memberships__project=project, memberships__role__in=FIX_ROLES
    ).distinct()


def access_fixer(project: Project, user_id: int) -> User:
    """The fixer of ``project`` with this id (:class:`InvalidReview` for any other id)."""
    found = fixers(project).filter(pk=user_id).first()
    if found is None:
        raise InvalidReview(FIX_ASSIGNEE_REFUSED)
    return found


def access_fix_assignment(user: User, assignment_id: int) -> Assignment:
    """A fix assignment the user may open: theirs, or an unassigned one of their projects;
    managers of the project see all of its fixes. NotFound otherwise."""
    found = (
        Assignment.objects.filter(kind=Assignment.Kind.FIX, pk=assignment_id)
        .filter(video__project__in=projects_for_user(user))
        .select_related("masklet", "video", "video__project", "user")
        .first()
    )
    if found is None:
        raise NotFound("No such fix assignment")
    role = project_role(user, found.video.project)
    if found.user_id not in (None, user.pk) and role != Role.MANAGER:
        raise NotFound("No such fix assignment")
    return found


def fix_review(assignment: Assignment) -> Review | None:
    """The unsatisfactory verdict that created a fix assignment (its flags and notes)."""
    return (
        Review.objects.filter(
            revision__masklet=assignment.masklet,
            verdict=Review.Verdict.UNSATISFACTORY,
            created_at__lte=assignment.created_at,
        )
        .select_related("reviewer", "revision")
        .order_by("-created_at", "-id")
        .first()
    )


@transaction.atomic
def do_resubmit_fix(
    assignment: Assignment,
    user: User,
    frames: Mapping[int, FrameMask],
    *,
    base_revision_id: int | None,
    note: str = "",
) -> MaskletRevision:
    """Save the annotator's corrected frames as a new revision and send the masklet back to
    review; the fix assignment is done.

    Locks the masklet row, then the assignment row (the same order as
    :func:`engine.review.verdicts.do_review`). Frames outside the video or masks of another size
    raise :class:`~engine.masklets.revisions.InvalidMask`; a base revision that is not current
    raises :class:`~engine.masklets.revisions.StaleRevision`.
    """
    if assignment.masklet_id is None:
        raise NotReviewable("this fix assignment has no masklet")
    masklet = Masklet.objects.select_for_update().get(pk=assignment.masklet_id)
    locked = (
        Assignment.objects.select_for_update(of=("self",))
        .select_related("video__project")
        .get(pk=assignment.pk)
    )
    if locked.kind != Assignment.Kind.FIX:
        raise NotReviewable("not a fix assignment")
    if locked.state not in (Assignment.State.OPEN, Assignment.State.LEASED):
        raise NotReviewable(f"this fix assignment is already {locked.state}")
    if locked.user_id is None:
        if project_role(user, locked.video.project) is None:
            raise AccessDenied("Only members of the project may fix its masklets")
        locked.user = user
    elif locked.user_id != user.pk:
        raise AccessDenied("This fix is assigned to someone else")
    if masklet.status != Masklet.Status.NEEDS_FIX:
        raise NotReviewable(f"the masklet is {masklet.status}, not waiting for a fix")
    revision = do_save_revision(
        masklet,
        author=user,
        frames=frames,
        base_revision_id=base_revision_id,
        edited_frames=frames.keys(),
        note=note,
    )
    Masklet.objects.filter(pk=masklet.pk).update(
        status=Masklet.Status.SUBMITTED, updated_at=timezone.now()
    )
    locked.state = Assignment.State.DONE
    locked.completed_at = timezone.now()
    locked.save(update_fields=["state", "completed_at", "user"])
    return revision
