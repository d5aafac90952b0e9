"""Procedural videos as project videos: stored like ingested ones, ground truth regenerated.

``add_procedural_video`` writes the frames as ingest writes decoded frames (JPEG at
``frame_key(video, index)``, a thumbnail, width/height/frame_count, status ``ready``), so the
workspace, review and export open it like any other video. The ground truth is never stored:
``metadata["procedural"] = {"seed": ..., "spec": {...}}`` is enough for :func:`ground_truth` to
regenerate the exact clip (frames and masks) from ``make_video``.
"""

from __future__ import annotations

import dataclasses
import functools
import io
from dataclasses import asdict
from typing import Any

import numpy as np
from django.db import transaction
from PIL import Image

from engine.errors import InvalidInput
from engine.models import Project, User, Video, frame_key
from engine.simulation.procedural import ProceduralSpec, ProceduralVideo, make_video
from engine.videos import storage
from engine.videos.ingest import THUMBNAIL_SIZE, thumbnail_key

JPEG_QUALITY = 95
"""Close to ingest's ffmpeg ``-q:v 2``."""


def add_procedural_video(
    project: Project, video: ProceduralVideo, *, name: str, uploaded_by: User | None = None
) -> Video:
    """Store ``video`` (made by ``make_video``) as a ready video of ``project``.

    The frames are stored as JPEG (lossy, as ingested frames are); the ground truth is the
    regenerated clip (:func:`ground_truth`). On a storage failure nothing is left behind.

    Raises:
        InvalidInput: an empty name.
    """
    name = name.strip()
    if not name:
        raise InvalidInput("A procedural video needs a name")
    num_frames, height, width = video.frames.shape[:3]
    fps = float(project.annotation_fps)
    row = Video.objects.create(
        project=project,
        name=name[:255],
        uploaded_by=uploaded_by,
        status=Video.Status.DECODING,
        annotation_fps=fps,
        metadata={"procedural": {"seed": int(video.seed), "spec": asdict(video.spec)}},
    )
    try:
        size = 0
        for index, frame in enumerate(video.frames):
            data = _jpeg(frame)
            storage.put_file(frame_key(row.pk, index), io.BytesIO(data))
            size += len(data)
        thumb = Image.fromarray(video.frames[0])
        thumb.thumbnail(THUMBNAIL_SIZE)
        storage.put_file(thumbnail_key(row.pk), io.BytesIO(_jpeg(np.asarray(thumb), 85)))
    except Exception:
        storage.delete_prefix(row.frames_prefix)
        storage.delete_key(thumbnail_key(row.pk))
        row.delete()
        raise
    with transaction.atomic():
        Video.objects.filter(pk=row.pk).update(
            status=Video.Status.READY,
            progress=1.0,
            frame_count=num_frames,
            width=width,
            height=height,
            source_fps=fps,
            duration=num_frames / fps,
            codec="procedural",
            size_bytes=size,
            thumbnail_key=thumbnail_key(row.pk),
        )
    row.refresh_from_db()
    return row


def ground_truth(video: Video) -> ProceduralVideo:
    """The clip a procedural video was made from, regenerated from its metadata.

    Regenerated clips are cached (a few); each call returns its own copies of the arrays.

    Raises:
        InvalidInput: the video is not procedural or its metadata is malformed.
    """
    meta = (video.metadata or {}).get("procedural")
    if not isinstance(meta, dict):
        raise InvalidInput(f"Video {video.name!r} is not a procedural video")
    try:
        seed = int(meta["seed"])
        spec = ProceduralSpec(**_spec_fields(meta["spec"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(
            f"Video {video.name!r} has malformed procedural metadata: {exc}"
        ) from exc
    clip = _regenerate(seed, spec)
    return dataclasses.replace(
        clip,
        frames=clip.frames.copy(),
        masks=clip.masks.copy(),
        amodal_masks=clip.amodal_masks.copy(),
    )


def is_procedural(video: Video) -> bool:
    return isinstance((video.metadata or {}).get("procedural"), dict)


@functools.lru_cache(maxsize=4)
def _regenerate(seed: int, spec: ProceduralSpec) -> ProceduralVideo:
    clip = make_video(seed, spec)
    for array in (clip.frames, clip.masks, clip.amodal_masks):
        array.flags.writeable = False
    return clip


def _spec_fields(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise TypeError("spec must be an object")
    return raw


def _jpeg(frame: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    out = io.BytesIO()
    Image.fromarray(frame).save(out, "JPEG", quality=quality)
    return out.getvalue()
