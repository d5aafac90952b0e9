"""A ready video's decoded frames as a model frame source, read from storage one at a time
(never the whole video in memory); what annotation sessions and automatic masklets read."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.errors import Conflict
from engine.models import Video, frame_key
from engine.videos import storage

if TYPE_CHECKING:
    from model.frames import CallableFrameSource


class FrameSizeUnknown(Conflict):
    """The video has no recorded frame size (it was never decoded)."""


def storage_frame_source(video: Video) -> CallableFrameSource:
    """The video's decoded JPEG frames, read from object storage one at a time."""
    from model.frames import CallableFrameSource

    if not video.width or not video.height:
        raise FrameSizeUnknown(f"video {video.pk} has no recorded frame size")
    return CallableFrameSource(
        video.frame_count,
        video.width,
        video.height,
        lambda index: storage.read_bytes(frame_key(video.pk, index)),
    )
