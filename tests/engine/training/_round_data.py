"""A project whose verified masklets are procedural videos with exact ground truth: frames stored
as JPEGs through the real storage, masks verified through the review flow."""

from __future__ import annotations

import io
from collections.abc import Collection

import numpy as np
from PIL import Image

from engine.masklets.revisions import FrameMask, do_create_masklet
from engine.masks.rle import encode_rle
from engine.models import Masklet, MaskletRevision, Project, User, Video, frame_key
from engine.review.submission import do_submit_masklet
from engine.review.verdicts import do_review
from engine.simulation.procedural import ProceduralSpec, make_videos
from engine.videos import storage

# One large object on 5 frames: quick to train and evaluate on test_tiny, and large enough that
# a few steps from random weights already segment it far better than random weights do.
SPEC = ProceduralSpec(
    num_frames=5,
    height=128,
    width=128,
    num_objects=1,
    reappear=False,
    occlusion=False,
    min_size=0.26,
    max_size=0.3,
)


def verified_procedural_videos(
    project: Project,
    annotator: User,
    reviewer: User,
    count: int,
    first_seed: int = 1,
    *,
    masked_frames: Collection[int] | None = None,
    source: str = "click",
) -> list[Video]:
    """``count`` ready videos of ``project``, one verified masklet per object (the ground truth)
    with a mask on every frame, or only on ``masked_frames``; its frames' ``source`` as given."""
    made = []
    for clip in make_videos(first_seed, count, SPEC):
        frames_t, height, width = clip.frames.shape[:3]
        video = Video.objects.create(
            project=project,
            name=f"procedural-{clip.seed}.mp4",
            status=Video.Status.READY,
            width=width,
            height=height,
            frame_count=frames_t,
        )
        for t in range(frames_t):
            buffer = io.BytesIO()
            Image.fromarray(clip.frames[t]).save(buffer, format="JPEG", quality=95)
            buffer.seek(0)
            storage.put_file(frame_key(video.pk, t), buffer)
        for o in range(clip.masks.shape[0]):
            frames = {
                t: FrameMask(encode_rle(np.asarray(clip.masks[o, t])), source)
                for t in range(frames_t)
                if masked_frames is None or t in masked_frames
            }
            masklet = do_create_masklet(video, author=annotator, frames=frames)
            masklet = do_submit_masklet(masklet, annotator)
            do_review(_current(masklet), reviewer, "satisfactory")
        made.append(video)
    return made


def _current(masklet: Masklet) -> MaskletRevision:
    assert masklet.current_revision is not None
    return masklet.current_revision
