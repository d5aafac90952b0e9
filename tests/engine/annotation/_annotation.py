"""Builders shared by the annotation tests: a small ready video, edits, masks, a masklet that
review sent back for a fix."""

from __future__ import annotations

import numpy as np

from engine.annotation.edits import FrameEdit, Prompt
from engine.masklets.revisions import FrameMask, do_create_masklet
from engine.masks.rle import encode_rle
from engine.models import Assignment, Masklet, Video

H, W, N_FRAMES = 24, 32, 10


def video(project, name: str = "v.mp4") -> Video:
    return Video.objects.create(
        project=project,
        name=name,
        status=Video.Status.READY,
        width=W,
        height=H,
        frame_count=N_FRAMES,
    )


def box_mask(top: int, left: int, size: int = 5) -> np.ndarray:
    mask = np.zeros((H, W), dtype=bool)
    mask[top : top + size, left : left + size] = True
    return mask


def sent_back_for_fix(v: Video, author, frames: dict[int, np.ndarray]) -> Masklet:
    """A masklet by ``author`` that a reviewer found unsatisfactory: status needs_fix and an
    open fix assignment for its author (what ``engine.review`` leaves behind), on a video whose
    annotation its author finished."""
    Assignment.objects.create(
        kind=Assignment.Kind.ANNOTATE, state=Assignment.State.DONE, user=author, video=v
    )
    masklet = do_create_masklet(
        v,
        author=author,
        frames={i: FrameMask(encode_rle(m), "click") for i, m in frames.items()},
        status=Masklet.Status.NEEDS_FIX,
    )
    Assignment.objects.create(
        kind=Assignment.Kind.FIX,
        state=Assignment.State.OPEN,
        user=author,
        video=v,
        masklet=masklet,
        flagged_frames=sorted(frames),
    )
    return masklet


def click(frame: int, mask: np.ndarray | None, *, tool: str = "video_click") -> FrameEdit:
    return FrameEdit(
        frame, tool, None if mask is None else encode_rle(mask), Prompt(((5.0, 6.0),), (1,))
    )


def stroke(frame: int, mask: np.ndarray, tool: str = "brush") -> FrameEdit:
    return FrameEdit(frame, tool, encode_rle(mask))


def propagated(frame: int, mask: np.ndarray | None) -> FrameEdit:
    return FrameEdit(frame, "propagate", None if mask is None else encode_rle(mask))
