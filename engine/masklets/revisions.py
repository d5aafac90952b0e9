"""Masklets and their immutable revisions: the one write path for mask data.

A revision stores its per-frame masks in ``MaskletRevision.frames`` as
``{"<frame index>": {"rle": COCO RLE | None, "source": str, "stability": float | None}}``
(``None`` = the object is absent on that annotated frame). Frames not listed were never
annotated. Writers name the revision they started from; a stale base raises
:class:`StaleRevision` instead of silently overwriting someone else's work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Max

from engine.errors import Conflict, InvalidInput
from engine.masks.rle import Rle, as_compressed_rle
from engine.models import Masklet, MaskletRevision, User, Video

FRAME_SOURCES = ("click", "propagated", "brush", "auto", "import")
MAX_REVISION_NOTE_CHARS = 2000


class StaleRevision(Conflict):
    """The masklet changed since the writer loaded it (HTTP 409 Conflict)."""


class InvalidMask(InvalidInput):
    """A frame mask that cannot belong to this video (HTTP 400)."""


@dataclass(frozen=True)
class FrameMask:
    rle: Rle | None
    source: str = "propagated"
    stability: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"rle": self.rle, "source": self.source, "stability": self.stability}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FrameMask:
        rle = data.get("rle")
        return cls(
            as_compressed_rle(rle) if rle is not None else None,
            data.get("source", "propagated"),
            data.get("stability"),
        )


def _check_note(note: str) -> str:
    """A revision note the database can keep: bounded, without NUL (PostgreSQL refuses it)."""
    if len(note) > MAX_REVISION_NOTE_CHARS or "\x00" in note:
        raise InvalidInput(
            f"a revision note must be at most {MAX_REVISION_NOTE_CHARS} characters, "
            "with no NUL character"
        )
    return note


def _frames_json(video: Video, frames: Mapping[int, FrameMask]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for index, frame in sorted(frames.items()):
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise InvalidMask(f"frame index {index!r} is not a non-negative integer")
        if video.frame_count and index >= video.frame_count:
            raise InvalidMask(f"frame {index} is outside the video's {video.frame_count} frames")
        if frame.source not in FRAME_SOURCES:
            raise InvalidMask(f"unknown frame source {frame.source!r}")
        if frame.rle is not None:
            height, width = frame.rle["size"]
            if video.height and video.width and (height, width) != (video.height, video.width):
                raise InvalidMask(
                    f"frame {index}: mask is {width}x{height}, the video is "
                    f"{video.width}x{video.height}"
                )
        out[str(index)] = frame.to_json()
    return out


def revision_frames(revision: MaskletRevision) -> dict[int, FrameMask]:
    """The revision's frame masks keyed by frame index, in frame order."""
    return {
        int(k): FrameMask.from_json(v)
        for k, v in sorted(revision.frames.items(), key=lambda kv: int(kv[0]))
    }


@transaction.atomic
def do_create_masklet(
    video: Video,
    *,
    author: User | None,
    frames: Mapping[int, FrameMask],
    object_id: int | None = None,
    kind: str = Masklet.Kind.MANUAL,
    status: str = Masklet.Status.DRAFT,
    edited_frames: Iterable[int] = (),
    label: str = "",
    note: str = "",
) -> Masklet:
    """Create a masklet and its revision 1. ``object_id`` defaults to the next free id.

    Locks the video row so two writers never pick the same object id.
    """
    Video.objects.select_for_update().filter(pk=video.pk).first()
    if object_id is None:
        top = Masklet.objects.filter(video=video).aggregate(top=Max("object_id"))["top"]
        object_id = 0 if top is None else top + 1
    masklet = Masklet.objects.create(
        video=video, object_id=object_id, kind=kind, status=status, label=label
    )
    revision = MaskletRevision.objects.create(
        masklet=masklet,
        number=1,
        author=author,
        frames=_frames_json(video, frames),
        edited_frames=sorted(set(edited_frames)),
        note=_check_note(note),
        label=label,
    )
    masklet.current_revision = revision
    masklet.save(update_fields=["current_revision"])
    return masklet


@transaction.atomic
def do_save_revision(
    masklet: Masklet,
    *,
    author: User | None,
    frames: Mapping[int, FrameMask],
    base_revision_id: int | None,
    edited_frames: Iterable[int] = (),
    replace: bool = False,
    note: str = "",
) -> MaskletRevision:
    """Write a new revision on top of ``base_revision_id``.

    ``frames`` are merged over the base revision's frames unless ``replace``. Locks the masklet
    row; raises :class:`StaleRevision` when the current revision is not the writer's base.
    """
    locked = Masklet.objects.select_for_update().get(pk=masklet.pk)
    if locked.current_revision_id != base_revision_id:
        raise StaleRevision(
            f"masklet {locked.pk} is at revision {locked.current_revision_id}, "
            f"not {base_revision_id}; reload and apply your edit again"
        )
    base = locked.current_revision
    merged: dict[int, FrameMask] = {} if replace or base is None else revision_frames(base)
    merged.update(frames)
    number = (base.number if base else 0) + 1
    revision = MaskletRevision.objects.create(
        masklet=locked,
        number=number,
        author=author,
        frames=_frames_json(locked.video, merged),
        edited_frames=sorted(set(edited_frames)),
        note=_check_note(note),
        label=locked.label,
    )
    locked.current_revision = revision
    locked.save(update_fields=["current_revision", "updated_at"])
    masklet.current_revision = revision
    return revision
