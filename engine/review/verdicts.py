"""Verification: the review queue, verdicts, fix assignments and review statistics.

Masklet states move ``draft -> submitted -> verified | needs_fix | rejected`` and
``needs_fix -> submitted`` (after a fix). Every transition here runs in one transaction with the
masklet row locked (``select_for_update``), so two reviewers, or a reviewer and an annotator,
never both act on the same state. ``Review`` rows are only ever created, never edited: the history
of revisions and verdicts is the audit trail.

Errors map onto HTTP statuses: :class:`InvalidReview` 400, :class:`SelfReview` (an
:class:`~engine.accounts.access.AccessDenied`) 403,
:class:`~engine.masklets.revisions.StaleRevision` and :class:`NotReviewable` 409.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from engine.accounts.access import AccessDenied, masklets_for_user, project_role, projects_for_user
from engine.errors import Conflict, InvalidInput, NotFound
from engine.masklets.revisions import FrameMask, StaleRevision, do_save_revision
from engine.masks.rle import Rle, normalize_rle
from engine.models import (
    Assignment,
    Masklet,
    MaskletRevision,
    Project,
    Review,
    Role,
    User,
    Video,
)
from engine.review import leases

REVIEW_ROLES = (Role.REVIEWER, Role.MANAGER)
MAX_NOTE_CHARS = 2000
MAX_COMMENT_CHARS = 10_000

__all__ = [
    "FrameEdit",
    "InvalidReview",
    "NotReviewable",
    "ReviewStats",
    "ReviewerStats",
    "SelfReview",
    "StaleRevision",
    "access_fix_assignment",
    "access_masklet",
    "authored_upto",
    "can_review",
    "client_frames",
    "do_resubmit_fix",
    "do_open_review",
    "do_review",
    "do_submit_masklet",
    "do_take_next_review",
    "fix_review",
    "frame_index",
    "frame_edit_history",
    "mask_from_client",
    "review_history",
    "review_payload",
    "review_queue",
    "review_stats",
    "validate_flags",
]


class InvalidReview(InvalidInput):
    """Bad input to a review or fix: unknown verdict, frame outside the video, NaN... (400)."""


class SelfReview(AccessDenied):
    """The reviewer authored (part of) the revision under review (403)."""


class NotReviewable(Conflict):
    """The masklet or assignment is not in a state that allows this action (409)."""


# --- who may review what ----------------------------------------------------------------------


def can_review(user: User, project: Project) -> bool:
    return project_role(user, project) in REVIEW_ROLES


def authored_upto(user: User, revision: MaskletRevision) -> bool:
    """Did ``user`` write ``revision`` or any revision it was built on?"""
    return MaskletRevision.objects.filter(
        masklet_id=revision.masklet_id, number__lte=revision.number, author=user
    ).exists()


def access_masklet(user: User, masklet_id: int) -> Masklet:
    """A masklet of a project the user belongs to (404 otherwise)."""
    try:
        return masklets_for_user(user).select_related("video", "video__project").get(pk=masklet_id)
    except Masklet.DoesNotExist:
        raise NotFound("No such masklet") from None


def review_queue(user: User, project: Project | None = None) -> QuerySet[Masklet]:
    """Submitted masklets ``user`` may review, oldest first.

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
    return (
        queue.exclude(pk__in=MaskletRevision.objects.filter(author=user).values("masklet_id"))
        .exclude(pk__in=leases.leased_by_others(user).values("pk"))
        .select_related("video", "video__project", "current_revision")
        .order_by("updated_at", "id")
    )


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


# --- input validation ---------------------------------------------------------------------------


def frame_index(value: Any, video: Video, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidReview(f"{what} {value!r} is not a frame index")
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value) or not value.is_integer():
            raise InvalidReview(f"{what} {value!r} is not a whole frame index")
        value = int(value)
    if isinstance(value, str):
        if not value.strip().lstrip("-").isdigit():
            raise InvalidReview(f"{what} {value!r} is not a frame index")
        value = int(value)
    if value < 0 or value >= video.frame_count:
        raise InvalidReview(
            f"{what} {value} is outside the video (frames 0..{video.frame_count - 1})"
        )
    return value


def validate_flags(
    video: Video, flagged_frames: Iterable[Any], frame_notes: Mapping[Any, Any] | None
) -> tuple[list[int], dict[str, str]]:
    """Check flagged frame indices and per-frame notes against the video.

    Returns the sorted unique flagged frames and the notes keyed by the frame index as a string
    (JSON keys). A note must belong to a flagged frame; empty notes are dropped.
    """
    if isinstance(flagged_frames, str | bytes | Mapping) or not isinstance(
        flagged_frames, Iterable
    ):
        raise InvalidReview("flagged_frames must be a list of frame indices")
    flagged = sorted({frame_index(f, video, "flagged frame") for f in flagged_frames})
    notes: dict[str, str] = {}
    if frame_notes is not None and not isinstance(frame_notes, Mapping):
        raise InvalidReview("frame_notes must map frame indices to text")
    for key, text in (frame_notes or {}).items():
        index = frame_index(key, video, "note for frame")
        if not isinstance(text, str):
            raise InvalidReview(f"the note for frame {index} must be text")
        if len(text) > MAX_NOTE_CHARS:
            raise InvalidReview(f"the note for frame {index} is over {MAX_NOTE_CHARS} characters")
        if index not in flagged:
            raise InvalidReview(f"frame {index} has a note but is not flagged")
        if text.strip():
            notes[str(index)] = text.strip()
    return flagged, notes


def mask_from_client(video: Video, data: Any) -> Rle:
    """A frame mask sent by a browser or API client, as a COCO RLE the database keeps.

    Accepts compressed RLE (``counts`` a string) or uncompressed RLE (``counts`` a list of
    column-major run lengths starting with background, summing to ``H * W``), which is what the
    fix page's brush sends. Sizes must equal the video's.
    """
    if not isinstance(data, Mapping) or "size" not in data or "counts" not in data:
        raise InvalidReview("a mask is {'size': [H, W], 'counts': ...}")
    size = data["size"]
    if (
        not isinstance(size, list)
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in size)
    ):
        raise InvalidReview("mask size must be [H, W] integers")
    if (size[0], size[1]) != (video.height, video.width):
        raise InvalidReview(
            f"mask is {size[1]}x{size[0]}, the video is {video.width}x{video.height}"
        )
    counts = data["counts"]
    if isinstance(counts, list):
        if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts):
            raise InvalidReview("uncompressed RLE counts must be non-negative integers")
        if sum(counts) != size[0] * size[1]:
            raise InvalidReview(
                f"RLE counts sum to {sum(counts)}, a {size[1]}x{size[0]} mask has "
                f"{size[0] * size[1]} pixels"
            )
    elif not isinstance(counts, str):
        raise InvalidReview("RLE counts must be a string or a list of integers")
    try:
        return normalize_rle({"size": size, "counts": counts})
    except (TypeError, ValueError) as exc:
        raise InvalidReview(f"unreadable RLE: {exc}") from None


def client_frames(video: Video, frames: Any) -> dict[int, FrameMask]:
    """``{"<frame>": RLE | None}`` sent by a client, as brush-edited frame masks (None = the
    object is absent on that frame)."""
    if not isinstance(frames, Mapping):
        raise InvalidReview("frames must map frame indices to masks")
    out: dict[int, FrameMask] = {}
    for key, raw in frames.items():
        index = frame_index(key, video, "frame")
        if index in out:
            raise InvalidReview(f"frame {index} is given twice")
        out[index] = FrameMask(None if raw is None else mask_from_client(video, raw), "brush")
    return out


# --- state transitions --------------------------------------------------------------------------


@transaction.atomic
def do_submit_masklet(
    masklet: Masklet, user: User, *, base_revision_id: int | None = None
) -> Masklet:
    """Send a draft (or needs-fix) masklet to the review queue.

    Locks the masklet row. ``base_revision_id``, when given, must be the current revision
    (:class:`StaleRevision` otherwise). Pending fix assignments of the masklet are closed.
    """
    locked = (
        Masklet.objects.select_for_update(of=("self",))
        .select_related("video__project")
        .get(pk=masklet.pk)
    )
    if project_role(user, locked.video.project) is None:
        raise AccessDenied("Only members of the project may submit its masklets")
    if base_revision_id is not None and locked.current_revision_id != base_revision_id:
        raise StaleRevision(
            f"masklet {locked.pk} is at revision {locked.current_revision_id}, "
            f"not {base_revision_id}"
        )
    if locked.current_revision_id is None:
        raise NotReviewable("the masklet has no revision to submit")
    if locked.status not in (Masklet.Status.DRAFT, Masklet.Status.NEEDS_FIX):
        raise NotReviewable(f"a {locked.status} masklet cannot be submitted")
    _close_fix_assignments(locked)
    locked.status = Masklet.Status.SUBMITTED
    locked.save(update_fields=["status", "updated_at"])
    masklet.status = locked.status
    return locked


def _close_fix_assignments(masklet: Masklet) -> None:
    Assignment.objects.filter(
        kind=Assignment.Kind.FIX,
        masklet=masklet,
        state__in=[Assignment.State.OPEN, Assignment.State.LEASED],
    ).update(state=Assignment.State.DONE, completed_at=timezone.now())


_VERDICT_STATUS = {
    Review.Verdict.SATISFACTORY: Masklet.Status.VERIFIED,
    Review.Verdict.UNSATISFACTORY: Masklet.Status.NEEDS_FIX,
    Review.Verdict.REJECT: Masklet.Status.REJECTED,
}


@dataclass(frozen=True)
class ReviewOutcome:
    review: Review
    masklet: Masklet
    fix_assignment: Assignment | None


@transaction.atomic
def do_review(
    revision: MaskletRevision,
    reviewer: User,
    verdict: str,
    flagged_frames: Iterable[Any] = (),
    frame_notes: Mapping[Any, Any] | None = None,
    comment: str = "",
    *,
    fix_assignee: User | None = None,
) -> ReviewOutcome:
    """Record a verdict on ``revision`` and move its masklet on.

    satisfactory -> verified; unsatisfactory -> needs_fix plus a fix assignment carrying the
    flagged frames and notes, for ``fix_assignee`` (default: the revision's author; nobody for an
    authorless auto masklet, so any annotator of the project may take it); reject -> rejected.

    Locks the masklet row, then checks in this order: input (:class:`InvalidReview`), the
    reviewer's project role (:class:`AccessDenied`), own work (:class:`SelfReview`), that the
    revision is still the masklet's current one (:class:`StaleRevision`) and that the masklet
    awaits review (:class:`NotReviewable`). Nothing is written unless all pass.
    """
    if verdict not in Review.Verdict.values:
        raise InvalidReview(
            f"unknown verdict {verdict!r}; choose one of {', '.join(Review.Verdict.values)}"
        )
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT_CHARS:
        raise InvalidReview(f"the comment must be text of at most {MAX_COMMENT_CHARS} characters")
    masklet = (
        Masklet.objects.select_for_update(of=("self",))
        .select_related("video", "video__project")
        .get(pk=revision.masklet_id)
    )
    video = masklet.video
    flagged, notes = validate_flags(video, flagged_frames, frame_notes)
    if verdict == Review.Verdict.SATISFACTORY and flagged:
        raise InvalidReview("a satisfactory verdict cannot flag frames")
    if not can_review(reviewer, video.project):
        raise AccessDenied("Only the project's reviewers and managers review masklets")
    if authored_upto(reviewer, revision):
        raise SelfReview("You cannot review a masklet revision you worked on")
    if masklet.current_revision_id != revision.pk:
        raise StaleRevision(
            f"revision {revision.number} is no longer current (masklet {masklet.pk} changed); "
            "reload it"
        )
    if masklet.status != Masklet.Status.SUBMITTED:
        raise NotReviewable(f"the masklet is {masklet.status}, not awaiting review")
    if fix_assignee is not None and project_role(fix_assignee, video.project) is None:
        raise InvalidReview(f"{fix_assignee.username} is not a member of the project")

    review = Review.objects.create(
        revision=revision,
        reviewer=reviewer,
        verdict=verdict,
        flagged_frames=flagged,
        frame_notes=notes,
        comment=comment.strip(),
    )
    masklet.status = _VERDICT_STATUS[Review.Verdict(verdict)]
    masklet.save(update_fields=["status", "updated_at"])
    leases.close_review_leases(masklet)
    fix = None
    if verdict == Review.Verdict.UNSATISFACTORY:
        _close_fix_assignments(masklet)
        fix = Assignment.objects.create(
            kind=Assignment.Kind.FIX,
            state=Assignment.State.OPEN,
            user=fix_assignee if fix_assignee is not None else revision.author,
            video=video,
            masklet=masklet,
            flagged_frames=flagged,
            note=comment.strip(),
        )
    return ReviewOutcome(review, masklet, fix)


def access_fix_assignment(user: User, assignment_id: int) -> Assignment:
    """A fix assignment the user may open: theirs, or an unassigned one of their projects;
    managers of the project see all of its fix leases. 404 otherwise."""
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

    Locks the masklet row, then the assignment row (the same order as :func:`do_review`); a
    base revision that is not current raises :class:`StaleRevision`.
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


# --- history and payloads -----------------------------------------------------------------------


@dataclass(frozen=True)
class FrameEdit:
    """One revision that changed a frame's mask."""

    frame: int
    revision_id: int
    revision_number: int
    author: str | None
    source: str
    created_at: str


def frame_edit_history(
    masklet: Masklet, upto: MaskletRevision | None = None
) -> dict[int, list[FrameEdit]]:
    """For each frame, the revisions that set or changed its mask, oldest first.

    The first entry is the revision that first set the frame; later entries are edits. Frames
    compare by their stored JSON (RLE strings are canonical, so equal masks compare equal).
    """
    revisions = MaskletRevision.objects.filter(masklet=masklet).select_related("author")
    if upto is not None:
        revisions = revisions.filter(number__lte=upto.number)
    history: dict[int, list[FrameEdit]] = {}
    previous: dict[str, Any] = {}
    for revision in revisions.order_by("number"):
        for key, value in revision.frames.items():
            if previous.get(key) != value:
                history.setdefault(int(key), []).append(
                    FrameEdit(
                        frame=int(key),
                        revision_id=revision.pk,
                        revision_number=revision.number,
                        author=revision.author.username if revision.author else None,
                        source=str(value.get("source", "")),
                        created_at=revision.created_at.isoformat(),
                    )
                )
        previous = revision.frames
    return dict(sorted(history.items()))


def review_history(masklet: Masklet) -> list[dict[str, Any]]:
    """Every verdict on every revision of the masklet, oldest first."""
    reviews = (
        Review.objects.filter(revision__masklet=masklet)
        .select_related("reviewer", "revision")
        .order_by("created_at", "id")
    )
    return [
        {
            "id": r.pk,
            "revision": r.revision.number,
            "revision_id": r.revision_id,
            "reviewer": r.reviewer.username,
            "verdict": r.verdict,
            "verdict_label": Review.Verdict(r.verdict).label,
            "flagged_frames": list(r.flagged_frames),
            "frame_notes": dict(r.frame_notes),
            "comment": r.comment,
            "created_at": r.created_at.isoformat(),
        }
        for r in reviews
    ]


def review_payload(masklet: Masklet, frame_url_prefix: str) -> dict[str, Any]:
    """Everything the review and fix pages need to play a masklet, as JSON-ready data.

    ``frames`` maps frame index (string) to a COCO compressed RLE or None (absent); frames not
    listed were never annotated. ``edits`` lists, per frame, the revisions that set it.
    """
    video = masklet.video
    revision = masklet.current_revision
    frames = {} if revision is None else {k: v.get("rle") for k, v in revision.frames.items()}
    revisions = MaskletRevision.objects.filter(masklet=masklet).select_related("author")
    return {
        "masklet": {
            "id": masklet.pk,
            "object_id": masklet.object_id,
            "kind": masklet.kind,
            "status": masklet.status,
            "label": masklet.label,
        },
        "video": {
            "id": video.pk,
            "name": video.name,
            "width": video.width,
            "height": video.height,
            "frame_count": video.frame_count,
            "fps": video.annotation_fps,
            "frame_url_prefix": frame_url_prefix,
        },
        "revision": None
        if revision is None
        else {
            "id": revision.pk,
            "number": revision.number,
            "author": revision.author.username if revision.author else None,
        },
        "frames": frames,
        "edits": {
            str(k): [asdict(e) for e in v] for k, v in frame_edit_history(masklet, revision).items()
        },
        "revisions": [
            {
                "id": r.pk,
                "number": r.number,
                "author": r.author.username if r.author else None,
                "created_at": r.created_at.isoformat(),
                "edited_frames": list(r.edited_frames),
                "note": r.note,
            }
            for r in revisions.order_by("number")
        ],
        "reviews": review_history(masklet),
    }


# --- statistics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewerStats:
    reviewer: str
    reviews: int
    satisfactory: int
    unsatisfactory: int
    rejected: int
    active_days: int

    @property
    def reviews_per_active_day(self) -> float:
        return self.reviews / self.active_days if self.active_days else 0.0


@dataclass(frozen=True)
class ReviewStats:
    """Review throughput and rejection rates of one project.

    ``unsatisfactory_rate`` / ``reject_rate`` are shares of all reviews (0 when there are none);
    ``per_day`` is (UTC date, reviews) for days with at least one review.
    """

    total: int
    satisfactory: int
    unsatisfactory: int
    rejected: int
    per_day: list[tuple[date, int]] = field(default_factory=list)
    per_reviewer: list[ReviewerStats] = field(default_factory=list)

    @property
    def unsatisfactory_rate(self) -> float:
        return self.unsatisfactory / self.total if self.total else 0.0

    @property
    def reject_rate(self) -> float:
        return self.rejected / self.total if self.total else 0.0

    @property
    def reviews_per_active_day(self) -> float:
        return self.total / len(self.per_day) if self.per_day else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "satisfactory": self.satisfactory,
            "unsatisfactory": self.unsatisfactory,
            "rejected": self.rejected,
            "unsatisfactory_rate": self.unsatisfactory_rate,
            "reject_rate": self.reject_rate,
            "reviews_per_active_day": self.reviews_per_active_day,
            "per_day": [{"day": d.isoformat(), "reviews": n} for d, n in self.per_day],
            "per_reviewer": [
                {**asdict(r), "reviews_per_active_day": r.reviews_per_active_day}
                for r in self.per_reviewer
            ],
        }


def review_stats(project: Project) -> ReviewStats:
    """Throughput (reviews per day and per reviewer) and verdict shares of a project."""
    reviews = Review.objects.filter(revision__masklet__video__project=project)
    ok = Q(verdict=Review.Verdict.SATISFACTORY)
    bad = Q(verdict=Review.Verdict.UNSATISFACTORY)
    rej = Q(verdict=Review.Verdict.REJECT)
    totals = reviews.aggregate(
        n=Count("id"),
        ok=Count("id", filter=ok),
        bad=Count("id", filter=bad),
        rej=Count("id", filter=rej),
    )
    per_day = [
        (row["day"], row["n"])
        for row in reviews.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("id"))
        .order_by("day")
    ]
    per_reviewer = [
        ReviewerStats(
            reviewer=row["reviewer__username"],
            reviews=row["n"],
            satisfactory=row["ok"],
            unsatisfactory=row["bad"],
            rejected=row["rej"],
            active_days=row["days"],
        )
        for row in reviews.annotate(day=TruncDate("created_at"))
        .values("reviewer__username")
        .annotate(
            n=Count("id"),
            ok=Count("id", filter=ok),
            bad=Count("id", filter=bad),
            rej=Count("id", filter=rej),
            days=Count("day", distinct=True),
        )
        .order_by("-n", "reviewer__username")
    ]
    return ReviewStats(
        total=totals["n"],
        satisfactory=totals["ok"],
        unsatisfactory=totals["bad"],
        rejected=totals["rej"],
        per_day=per_day,
        per_reviewer=per_reviewer,
    )
