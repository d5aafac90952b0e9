"""Attach a video file to a video that an import created without frames.

The file is checked at once (name, size, ffprobe, same width and height as the imported masks)
and stored; the usual ingest job decodes it at the video's annotation fps. When the decoded
frames cover every imported mask the video becomes ready and its held masklets enter the
queues (:func:`engine.videos.frameless.release_held_masklets`); otherwise the job fails, the
video stays ``no_frames`` with the reason, and nothing is released.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import IO

from django.conf import settings
from django.db import transaction

from engine.errors import Conflict, InvalidInput
from engine.jobs.lifecycle import do_create_job
from engine.models import Job, User, Video
from engine.videos import storage
from engine.videos.ffmpeg import IngestError, probe_video
from engine.videos.ingest import check_video_filename, source_key, video_limits


def do_attach_video_file(
    video: Video, user: User | None, name: str, fileobj: IO[bytes], size: int
) -> Job:
    """Store ``fileobj`` as the source of frame-less ``video`` and queue its ingest job.

    Raises:
        Conflict: the video already has frames (or is being decoded).
        InvalidInput: a bad name, too big, not a readable video, or a different frame size.
    """
    if video.status != Video.Status.NO_FRAMES:
        raise Conflict(f"Video {video.name!r} has frames already (it is {video.status})")
    try:
        check_video_filename(name)
        if size > settings.MAX_UPLOAD_BYTES:
            raise IngestError(
                f"The file is {size:,} bytes; the limit is {settings.MAX_UPLOAD_BYTES:,}"
            )
        with tempfile.TemporaryDirectory(prefix="attach-") as tmp:
            local = Path(tmp) / "source"
            with local.open("wb") as out:
                shutil.copyfileobj(fileobj, out, length=1024 * 1024)
            probe = probe_video(local, video_limits())
            if video.width and (probe.width, probe.height) != (video.width, video.height):
                raise IngestError(
                    f"The file is {probe.width}x{probe.height} but the imported masks are "
                    f"{video.width}x{video.height} (W x H)"
                )
            key = storage.put_path(source_key(video.pk, name), local)
    except IngestError as exc:
        raise InvalidInput(str(exc)) from None
    with transaction.atomic():
        updated = Video.objects.filter(pk=video.pk, status=Video.Status.NO_FRAMES).update(
            status=Video.Status.UPLOADED,
            source_key=key,
            codec=probe.codec,
            source_fps=probe.fps,
            duration=probe.duration,
            size_bytes=size,
            error="",
            progress=0.0,
        )
        if not updated:
            raise Conflict(f"Video {video.name!r} is being given frames already")
        return do_create_job(
            Job.Kind.INGEST,
            args={"video_id": video.pk},
            project=video.project,
            video=video,
            created_by=user,
        )
