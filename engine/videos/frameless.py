"""Videos created by an import without their frames (status ``no_frames``).

Such a video carries the imported masks but nothing to show under them, so it stays out of the
annotation queue (only ready videos are leased) and masklets imported into it for review are
held as drafts, listed in ``metadata["held_masklets"]`` (masklet id -> wanted status). Once its
video file is attached and decoded (:mod:`engine.videos.attach`, then the ingest job), the
held masklets get their wanted status and enter the queues.
"""

from __future__ import annotations

from django.db.models import F

from engine.models import Masklet, MaskletRevision, Video


def is_frameless(video: Video) -> bool:
    return (
        video.status == Video.Status.NO_FRAMES
        or (video.metadata or {}).get("has_frames", True) is False
    )


def held_masklet_count(video: Video) -> int:
    return len((video.metadata or {}).get("held_masklets") or {})


def frames_needed(video: Video) -> int:
    """How many frames the masklets' current revisions reach (highest index + 1); 0 if none."""
    current = MaskletRevision.objects.filter(
        masklet__video=video, masklet__current_revision=F("pk")
    )
    last = -1
    for frames in current.values_list("frames", flat=True).iterator():
        last = max([last, *(int(t) for t in frames)])
    return last + 1


def release_held_masklets(video: Video) -> int:
    """Give the held masklets their wanted status (caller: inside the transaction that marks
    the video ready); return how many changed. Masklets edited since stay as they are."""
    held: dict[str, str] = dict((video.metadata or {}).get("held_masklets") or {})
    released = 0
    for masklet_id, status in held.items():
        released += Masklet.objects.filter(pk=int(masklet_id), status=Masklet.Status.DRAFT).update(
            status=status
        )
    return released
