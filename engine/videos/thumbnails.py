"""Small frame thumbnails for the video page, made on first request and kept in storage.

The page lists up to hundreds of frames; full-size JPEGs there cost megabytes and seconds. Each
thumbnail is the frame scaled to fit ``FRAME_THUMB_SIZE`` (aspect kept), a few kilobytes, stored
at ``videos/<id>/thumbs/<index>.jpg`` so later requests read it back.
"""

from __future__ import annotations

import io

from PIL import Image

from engine.errors import NotFound
from engine.models import Video, frame_key
from engine.videos import storage

#: Bounding box (W, H) of a frame thumbnail, in pixels.
FRAME_THUMB_SIZE = (160, 120)


def frame_thumbnail_key(video_id: int, index: int) -> str:
    return f"videos/{video_id}/thumbs/{index:06d}.jpg"


def frame_thumbnail(video: Video, index: int) -> str:
    """The storage key of frame ``index``'s thumbnail, made (and stored) if missing.

    Raises:
        NotFound: no such frame.
    """
    if not 0 <= index < video.frame_count:
        raise NotFound("No such frame")
    key = frame_thumbnail_key(video.pk, index)
    if storage.exists(key):
        return key
    source = frame_key(video.pk, index)
    if not storage.exists(source):
        raise NotFound("No such frame")
    with Image.open(io.BytesIO(storage.read_bytes(source))) as img:
        img.thumbnail(FRAME_THUMB_SIZE)
        out = io.BytesIO()
        img.convert("RGB").save(out, "JPEG", quality=80)
    out.seek(0)
    return storage.put_file(key, out)
