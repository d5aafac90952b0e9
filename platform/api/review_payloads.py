"""The JSON the review API answers and the review and fix pages embed for their player.

The shape is a contract with ``frontend/static/js/review.js`` and ``fix.js``: keep it stable.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from engine.models import Assignment, Masklet, Review
from engine.review import fixes, history

FRAME_URL_PREFIX = "/media/videos/{video_id}/frames/"


def masklet_summary(masklet: Masklet) -> dict[str, Any]:
    revision = masklet.current_revision
    return {
        "id": masklet.pk,
        "video": masklet.video_id,
        "video_name": masklet.video.name,
        "project": masklet.video.project_id,
        "object_id": masklet.object_id,
        "kind": masklet.kind,
        "status": masklet.status,
        "revision": revision.pk if revision else None,
        "revision_number": revision.number if revision else None,
    }


def review_json(review: Review) -> dict[str, Any]:
    return {
        "id": review.pk,
        "revision": review.revision.number,
        "revision_id": review.revision_id,
        "reviewer": review.reviewer.username,
        "verdict": review.verdict,
        "verdict_label": Review.Verdict(review.verdict).label,
        "flagged_frames": list(review.flagged_frames),
        "frame_notes": dict(review.frame_notes),
        "comment": review.comment,
        "created_at": review.created_at.isoformat(),
    }


def review_history(masklet: Masklet) -> list[dict[str, Any]]:
    """Every verdict on every revision of the masklet, oldest first."""
    return [review_json(r) for r in history.masklet_reviews(masklet)]


def review_payload(masklet: Masklet) -> dict[str, Any]:
    """Everything the review and fix pages need to play a masklet.

    ``frames`` maps frame index (string) to a COCO compressed RLE or None (absent); frames not
    listed were never annotated. ``edits`` lists, per frame, the revisions that set it.
    """
    video = masklet.video
    revision = masklet.current_revision
    frames = {} if revision is None else {k: v.get("rle") for k, v in revision.frames.items()}
    edits = history.frame_edit_history(masklet, revision)
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
            "frame_url_prefix": FRAME_URL_PREFIX.format(video_id=video.pk),
        },
        "revision": None
        if revision is None
        else {
            "id": revision.pk,
            "number": revision.number,
            "author": revision.author.username if revision.author else None,
        },
        "frames": frames,
        "edits": {str(k): [asdict(e) for e in v] for k, v in edits.items()},
        "revisions": [
            {
                "id": r.pk,
                "number": r.number,
                "author": r.author.username if r.author else None,
                "created_at": r.created_at.isoformat(),
                "edited_frames": list(r.edited_frames),
                "note": r.note,
            }
            for r in history.masklet_revisions(masklet)
        ],
        "reviews": review_history(masklet),
    }


def fix_json(assignment: Assignment, *, with_payload: bool = False) -> dict[str, Any]:
    """A fix assignment with the verdict that asked for it (flags, notes, reviewer)."""
    masklet = assignment.masklet
    source = fixes.fix_review(assignment)
    data: dict[str, Any] = {
        "id": assignment.pk,
        "state": assignment.state,
        "user": assignment.user.username if assignment.user else None,
        "masklet": masklet_summary(masklet) if masklet else None,
        "flagged_frames": list(assignment.flagged_frames),
        "frame_notes": dict(source.frame_notes) if source else {},
        "reviewer": source.reviewer.username if source else None,
        "note": assignment.note,
        "created_at": assignment.created_at.isoformat(),
    }
    if with_payload and masklet is not None:
        data["review_data"] = review_payload(masklet)
    return data
