"""A masklet's history: which revision set each frame, and every verdict on its revisions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from engine.models import Masklet, MaskletRevision, Review


@dataclass(frozen=True)
class FrameEdit:
    """One revision that changed a frame's mask."""

    frame: int
    revision_id: int
    revision_number: int
    author: str | None
    source: str
    created_at: str


def masklet_revisions(masklet: Masklet) -> QuerySet[MaskletRevision]:
    """The masklet's revisions, oldest first, with their authors."""
    return (
        MaskletRevision.objects.filter(masklet=masklet).select_related("author").order_by("number")
    )


def masklet_reviews(masklet: Masklet) -> QuerySet[Review]:
    """Every verdict on every revision of the masklet, oldest first."""
    return (
        Review.objects.filter(revision__masklet=masklet)
        .select_related("reviewer", "revision")
        .order_by("created_at", "id")
    )


def frame_edit_history(
    masklet: Masklet, upto: MaskletRevision | None = None
) -> dict[int, list[FrameEdit]]:
    """For each frame, the revisions that set or changed its mask, oldest first.

    The first entry is the revision that first set the frame; later entries are edits. Frames
    compare by their stored JSON (RLE strings are canonical, so equal masks compare equal).
    """
    revisions = masklet_revisions(masklet)
    if upto is not None:
        revisions = revisions.filter(number__lte=upto.number)
    history: dict[int, list[FrameEdit]] = {}
    previous: dict[str, Any] = {}
    for revision in revisions:
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
