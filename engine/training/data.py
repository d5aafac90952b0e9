"""From a snapshot of verified masklets to training and held-out clips.

The split is by video and deterministic: a video is held out when the hash of its id falls under
``holdout_fraction`` (so adding videos never moves an old one), and a video once held out stays
held out (the project's round settings remember it), so held-out masks are never trained on.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from engine.datasets.snapshots import ExportMasklet, iter_snapshot_videos
from engine.masks.rle import decode_rle
from engine.models import DatasetSnapshot, Video, frame_key
from engine.videos import storage


@dataclass(frozen=True)
class VideoClip:
    """One video's verified masklets as arrays.

    Attributes:
        frames: (T, H, W, 3) uint8 RGB, the frames every object has a label for.
        masks: (O, T, H, W) bool, object o on frame t (empty where the object is absent).
    """

    video_id: int
    frame_indices: tuple[int, ...]
    frames: np.ndarray
    masks: np.ndarray


def video_hash_fraction(video_id: int) -> float:
    """A stable number in [0, 1) for a video id (sha256, not Python's salted hash)."""
    digest = hashlib.sha256(f"video:{video_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_videos(
    video_ids: Iterable[int], *, holdout_fraction: float, sticky: Iterable[int] = ()
) -> tuple[list[int], list[int]]:
    """``(train, held_out)`` video ids, each sorted.

    Held out: the ``sticky`` ids and those whose hash fraction is under ``holdout_fraction``.
    With two or more videos neither side is left empty: the lowest-hash video is held out if
    none is, and the highest-hash non-sticky one trains if all are held out.
    """
    ids = sorted(set(video_ids))
    pinned = set(sticky)
    held = {v for v in ids if v in pinned or video_hash_fraction(v) < holdout_fraction}
    if len(ids) >= 2 and not held:
        held.add(min(ids, key=video_hash_fraction))
    if len(ids) >= 2 and held == set(ids):
        movable = [v for v in ids if v not in pinned]
        if movable:
            held.discard(max(movable, key=video_hash_fraction))
    return [v for v in ids if v not in held], sorted(held)


def _read_frame(video_id: int, index: int, size: tuple[int, int] | None) -> np.ndarray:
    with Image.open(io.BytesIO(storage.read_bytes(frame_key(video_id, index)))) as image:
        rgb = image.convert("RGB")
        if size is not None and rgb.size != size:
            rgb = rgb.resize(size, Image.Resampling.BILINEAR)
        return np.asarray(rgb, dtype=np.uint8)


def _target_size(video: Video, max_side: int) -> tuple[int, int] | None:
    """(width, height) to shrink to so the long side is at most ``max_side`` (None: keep)."""
    width, height = int(video.width or 0), int(video.height or 0)
    if max(width, height) <= max_side or max_side <= 0:
        return None
    scale = max_side / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def labelled_frames(masklet: ExportMasklet, frame_count: int) -> set[int]:
    """The frames a verified masklet gives a label for.

    A masklet made here covers its whole video: a frame without a mask is a frame where the
    object is absent, as review, J&F and the SA-V export read it (a phase 1 annotator never
    touches the frames where the object is out of view). An imported masklet labels only the
    frames its source annotated (YouTube-VOS annotates every fifth frame, say).
    """
    imported = any(frame.source == "import" for frame in masklet.frames.values())
    if imported or frame_count <= 0:
        return set(masklet.frames)
    return set(range(frame_count)) | set(masklet.frames)


def _choose_frames(per_object: Sequence[set[int]], max_frames: int) -> list[int]:
    common = set.intersection(*per_object) if per_object else set()
    chosen = sorted(common if len(common) >= 2 else set.union(*per_object))
    if len(chosen) > max_frames:
        stride = -(-len(chosen) // max_frames)
        chosen = chosen[::stride][:max_frames]
    return chosen


def snapshot_clips(
    snapshot: DatasetSnapshot,
    video_ids: Iterable[int],
    *,
    max_frames: int = 48,
    max_side: int = 1024,
) -> list[VideoClip]:
    """One clip per listed video of the snapshot that has masks.

    Frames: those every masklet of the video labels (:func:`labelled_frames`; all labelled
    frames if fewer than two are shared), at most ``max_frames`` spread evenly; shrunk so the long
    side is at most ``max_side`` (masks by nearest neighbour).
    """
    wanted = set(video_ids)
    clips: list[VideoClip] = []
    for exported in iter_snapshot_videos(snapshot):
        video = exported.video
        if video.pk not in wanted or not exported.masklets:
            continue
        count = int(video.frame_count or 0)
        per_object = [labelled_frames(m, count) for m in exported.masklets]
        indices = _choose_frames(per_object, max_frames)
        if not indices:
            continue
        size = _target_size(video, max_side)
        frames = np.stack([_read_frame(video.pk, i, size) for i in indices])
        height, width = frames.shape[1:3]
        masks = np.zeros((len(exported.masklets), len(indices), height, width), dtype=bool)
        for o, masklet in enumerate(exported.masklets):
            for t, index in enumerate(indices):
                frame = masklet.frames.get(index)
                if frame is None or frame.rle is None:
                    continue
                mask = decode_rle(frame.rle).astype(bool)
                if mask.shape != (height, width):
                    resized = Image.fromarray(mask).resize(
                        (width, height), Image.Resampling.NEAREST
                    )
                    mask = np.asarray(resized, dtype=bool)
                masks[o, t] = mask
        clips.append(VideoClip(video.pk, tuple(indices), frames, masks))
    return clips
