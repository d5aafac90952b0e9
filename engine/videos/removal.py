"""Remove a video whose upload or decoding failed (its row, stored source and any frames)."""

from __future__ import annotations

from django.db import transaction

from engine.errors import Conflict
from engine.models import Video
from engine.videos import storage


def do_remove_failed_video(video: Video) -> None:
    """Delete a ``failed`` video and what storage holds for it. Other videos are refused
    (:class:`Conflict`): a ready video carries annotation work. Locks the video row."""
    with transaction.atomic():
        locked = Video.objects.select_for_update().filter(pk=video.pk).first()
        if locked is None:
            return
        if locked.status != Video.Status.FAILED:
            raise Conflict(f"Only failed videos can be removed; {locked.name!r} is {locked.status}")
        prefix = f"videos/{locked.pk}/"
        locked.delete()
    for folder in ("source/", "frames/", "thumbs/"):
        storage.delete_prefix(prefix + folder)
    storage.delete_key(prefix + "thumbnail.jpg")
