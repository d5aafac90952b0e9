"""Building blocks of the review tests' fixtures: square masks, a ready video, a masklet that
an annotator has submitted for review."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from engine.masklets.revisions import FrameMask, do_create_masklet
from engine.masks.rle import encode_rle
from engine.models import Masklet, Video
from engine.review.submission import do_submit_masklet


def square(height: int, width: int, top: int, left: int, size: int) -> np.ndarray:
    """A `[height, width]` bool mask with one `size` x `size` square at (top, left)."""
    mask = np.zeros((height, width), dtype=bool)
    mask[top : top + size, left : left + size] = True
    return mask


def ready_video(
    project, *, height: int, width: int, frame_count: int, name: str = "v.mp4"
) -> Video:
    return Video.objects.create(
        project=project,
        name=name,
        status=Video.Status.READY,
        width=width,
        height=height,
        frame_count=frame_count,
    )


def submitted_masklet(video, author, masks: Mapping[int, np.ndarray | None], **kw) -> Masklet:
    """A masklet of `video` by `author` with these per-frame masks (None: object absent),
    submitted for review."""
    frames = {
        i: FrameMask(None if mask is None else encode_rle(mask), "click")
        for i, mask in masks.items()
    }
    masklet = do_create_masklet(video, author=author, frames=frames, **kw)
    return do_submit_masklet(masklet, author)
