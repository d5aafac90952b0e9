"""Verdicts: a reviewer's satisfactory / unsatisfactory / reject on a masklet revision.

Masklet states move ``draft -> submitted -> verified | needs_fix | rejected`` and
``needs_fix -> submitted`` (after a fix). Every transition runs in one transaction with the
masklet row locked (``select_for_update``), so two reviewers, or a reviewer and an annotator,
never both act on the same state. ``Review`` rows are only ever created, never edited: the history
of revisions and verdicts is the audit trail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.db import transaction

from engine.accounts.access import AccessDenied
from engine.masklets.revisions import StaleRevision
from engine.models import Assignment, Masklet, MaskletRevision, Review, User, Video
from engine.review import leases
from engine.review.errors import InvalidReview, NotReviewable, SelfReview
from engine.review.fixes import FIX_ASSIGNEE_REFUSED, may_fix
from engine.review.queue import authored_upto, can_review

MAX_NOTE_CHARS = 2000
MAX_COMMENT_CHARS = 10_000

_VERDICT_STATUS = {
    Review.Verdict.SATISFACTORY: Masklet.Status.VERIFIED,
    Review.Verdict.UNSATISFACTORY: Masklet.Status.NEEDS_FIX,
    Review.Verdict.REJECT: Masklet.Status.REJECTED,
}


def check_text(text: object, what: str, max_chars: int) -> str:
    """``text`` if it is a string the database can keep: at most ``max_chars`` characters and no
    NUL byte (PostgreSQL refuses those)."""
    if not isinstance(text, str):
        raise InvalidReview(f"{what} must be text")
    if len(text) > max_chars:
        raise InvalidReview(f"{what} is over {max_chars} characters")
    if "\x00" in text:
        raise InvalidReview(f"{what} contains a NUL character")
    return text


def _frame_in_video(index: object, video: Video, what: str) -> int:
    if isinstance(index, bool) or not isinstance(index, int):
        raise InvalidReview(f"{what} {index!r} is not a frame index")
    if not 0 <= index < video.frame_count:
        raise InvalidReview(
            f"{what} {index} is outside the video (frames 0..{video.frame_count - 1})"
        )
    return index


def validate_flags(
    video: Video, flagged_frames: Iterable[int], frame_notes: Mapping[int, str]
) -> tuple[list[int], dict[str, str]]:
    """Check flagged frames and per-frame notes against the video.

    Returns the sorted unique flagged frames and the notes keyed by the frame index as a string
    (JSON keys). A note must belong to a flagged frame; blank notes are dropped.
    """
    flagged = sorted({_frame_in_video(f, video, "flagged frame") for f in flagged_frames})
    notes: dict[str, str] = {}
    for key, text in frame_notes.items():
        index = _frame_in_video(key, video, "note for frame")
        check_text(text, f"the note for frame {index}", MAX_NOTE_CHARS)
        if index not in flagged:
            raise InvalidReview(f"frame {index} has a note but is not flagged")
        if text.strip():
            notes[str(index)] = text.strip()
    return flagged, notes


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
    flagged_frames: Iterable[int] = (),
    frame_notes: Mapping[int, str] | None = None,
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
    revision is still the masklet's current one (:class:`StaleRevision`), that the masklet
    awaits review (:class:`NotReviewable`) and that the fix assignee may fix. Nothing is
    written unless all pass.
    """
    if verdict not in Review.Verdict.values:
        raise InvalidReview(
            f"unknown verdict {verdict!r}; choose one of {', '.join(Review.Verdict.values)}"
        )
    check_text(comment, "the comment", MAX_COMMENT_CHARS)
    masklet = (
        Masklet.objects.select_for_update(of=("self",))
        .select_related("video", "video__project")
        .get(pk=revision.masklet_id)
    )
    video = masklet.video
    flagged, notes = validate_flags(video, flagged_frames, frame_notes or {})
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
    if fix_assignee is not None and not may_fix(fix_assignee, video.project):
        raise InvalidReview(FIX_ASSIGNEE_REFUSED)

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
        leases.close_fix_assignments(masklet)
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
