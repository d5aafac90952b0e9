"""Dataset snapshots: the frozen set of masklet revisions an export reads.

A :class:`~engine.models.DatasetSnapshot` freezes the *current revisions of verified masklets*
of a project (optionally only some videos / kinds) when it is created; exports always read a
snapshot, so edits made while an export runs never leak into it. :func:`iter_snapshot_videos`
walks it one video at a time, which bounds an export's memory by its largest video.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction

from engine.errors import InvalidInput
from engine.masklets.revisions import FrameMask, revision_frames
from engine.models import DatasetSnapshot, Masklet, MaskletRevision, Project, User, Video


class ExportError(InvalidInput):
    """A snapshot or export that cannot be made as asked (HTTP 400)."""


# ---------------------------------------------------------------------------------------------
# Snapshots


@transaction.atomic
def do_create_snapshot(
    project: Project,
    *,
    user: User | None = None,
    video_ids: Sequence[int] | None = None,
    kinds: Sequence[str] | None = None,
    name: str = "",
) -> DatasetSnapshot:
    """Freeze the current revisions of the project's verified masklets.

    Args:
        video_ids: only these videos (they must belong to ``project``).
        kinds: only these masklet kinds ("manual", "auto").

    Raises:
        ExportError: unknown kind or a video outside the project.
    """
    masklets = Masklet.objects.filter(
        video__project=project, status=Masklet.Status.VERIFIED, current_revision__isnull=False
    )
    if kinds:
        unknown = sorted(set(kinds) - set(Masklet.Kind.values))
        if unknown:
            raise ExportError(f"unknown masklet kind(s) {unknown}; use manual or auto")
        masklets = masklets.filter(kind__in=list(kinds))
    if video_ids:
        ids = {int(v) for v in video_ids}
        found = set(Video.objects.filter(project=project, pk__in=ids).values_list("pk", flat=True))
        if found != ids:
            raise ExportError(f"video(s) {sorted(ids - found)} are not in project {project.pk}")
        masklets = masklets.filter(video_id__in=ids)
    snapshot = DatasetSnapshot.objects.create(project=project, name=name, created_by=user)
    through = DatasetSnapshot.revisions.through
    batch: list[Any] = []
    revision_ids = masklets.order_by("pk").values_list("current_revision_id", flat=True)
    for revision_id in revision_ids.iterator(chunk_size=2000):
        batch.append(through(datasetsnapshot_id=snapshot.pk, maskletrevision_id=revision_id))
        if len(batch) >= 2000:
            through.objects.bulk_create(batch)
            batch = []
    if batch:
        through.objects.bulk_create(batch)
    return snapshot


# ---------------------------------------------------------------------------------------------
# Reading a snapshot one video at a time


@dataclass
class ExportMasklet:
    """One masklet revision of a snapshot, as an export sees it."""

    object_id: int
    kind: str
    label: str
    masklet_pk: int
    revision_id: int
    frames: dict[int, FrameMask]
    edited_frames: list[int]


@dataclass
class ExportVideo:
    video: Video
    name: str
    masklets: list[ExportMasklet]

    @property
    def frame_hw(self) -> tuple[int, int]:
        return (int(self.video.height or 0), int(self.video.width or 0))

    @property
    def annotated_frames(self) -> list[int]:
        """Every frame index some masklet has an entry for (``None`` entries count)."""
        return sorted({t for m in self.masklets for t in m.frames})

    @property
    def row_count(self) -> int:
        """Rows of a frame-major file: the video's frames, or up to the last annotated frame."""
        last = max((t for m in self.masklets for t in m.frames), default=-1)
        return max(int(self.video.frame_count or 0), last + 1)


_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_stem(text: str) -> str:
    """``text`` reduced to letters, digits, ``_``, ``.`` and ``-``, fit for a file name."""
    return _UNSAFE_CHARS.sub("_", text).strip("._")


def export_video_name(video: Video) -> str:
    """Folder / file stem of a video in exports: SA-V's ``video_id`` if imported, else its name."""
    video_id = (video.metadata or {}).get("video_id")
    if video_id:
        return _UNSAFE_CHARS.sub("_", str(video_id))
    stem = Path(video.name).stem if "." in video.name else video.name
    return safe_stem(stem) or f"video_{video.pk}"


def snapshot_video_ids(snapshot: DatasetSnapshot) -> list[int]:
    ids = snapshot.revisions.values_list("masklet__video_id", flat=True).distinct()
    return sorted(set(ids))


def iter_snapshot_videos(snapshot: DatasetSnapshot) -> Iterator[ExportVideo]:
    """Yield the snapshot's videos in id order, each with its masklets in object-id order.

    Only one video's revisions are in memory at a time; export names are made unique.
    """
    used: set[str] = set()
    for video_id in snapshot_video_ids(snapshot):
        video = Video.objects.get(pk=video_id)
        name = export_video_name(video)
        if name in used:
            name = f"{name}_{video.pk}"
        used.add(name)
        revisions = (
            snapshot.revisions.filter(masklet__video_id=video_id)
            .select_related("masklet")
            .order_by("masklet__object_id")
        )
        masklets = [_export_masklet(r) for r in revisions.iterator(chunk_size=100)]
        yield ExportVideo(video=video, name=name, masklets=masklets)


def _export_masklet(revision: MaskletRevision) -> ExportMasklet:
    masklet = revision.masklet
    return ExportMasklet(
        object_id=masklet.object_id,
        kind=masklet.kind,
        label=masklet.label,
        masklet_pk=masklet.pk,
        revision_id=revision.pk,
        frames=revision_frames(revision),
        edited_frames=list(revision.edited_frames or []),
    )
