"""Video ingest: upload → validate (ffprobe) → decode at the annotation fps → frames in storage.

``do_upload_video`` runs in the request (or command) and refuses bad files at once: the video row
ends ``failed`` with the reason and nothing is written to storage. Good files are stored and an
ingest ``Job`` is queued; :func:`run_ingest_job` (the worker side) decodes, uploads frames with
progress and marks the video ``ready``. Any failure removes every frame already written.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import unicodedata
from pathlib import Path
from typing import IO

from django.conf import settings
from django.db import transaction
from PIL import Image

from engine.jobs.lifecycle import JobReporter, do_create_job, run_job
from engine.models import Job, Project, User, Video, frame_key
from engine.videos import storage
from engine.videos.ffmpeg import IngestError, VideoLimits, decode_frames, probe_video
from engine.videos.frameless import frames_needed, is_frameless, release_held_masklets

logger = logging.getLogger(__name__)
THUMBNAIL_SIZE = (320, 180)


def check_video_filename(name: str) -> str:
    """Return ``name`` if it is a bare file name; raise :class:`IngestError` otherwise."""
    if not name or not name.strip():
        raise IngestError("The file name is empty")
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith(".."):
        raise IngestError(f"The file name {name!r} contains path parts; send a bare file name")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise IngestError("The file name contains control characters")
    if len(name) > 200:
        raise IngestError("The file name is longer than 200 characters")
    return name


def video_limits() -> VideoLimits:
    return VideoLimits(
        max_width=settings.MAX_VIDEO_WIDTH,
        max_height=settings.MAX_VIDEO_HEIGHT,
        max_seconds=settings.MAX_VIDEO_SECONDS,
    )


def source_key(video_id: int, name: str) -> str:
    return f"videos/{video_id}/source/{name}"


def thumbnail_key(video_id: int) -> str:
    return f"videos/{video_id}/thumbnail.jpg"


def do_upload_video(
    project: Project, user: User | None, name: str, fileobj: IO[bytes], size: int
) -> Video:
    """Validate and store an uploaded video, then queue its ingest job.

    Returns the video row: ``status == "failed"`` with ``error`` set when the file was refused
    (nothing is stored then); otherwise ``uploaded`` with an ingest job queued on commit.
    The row is written even for refused files so the project page lists what went wrong.
    """
    video = Video.objects.create(
        project=project,
        name=name[:255] or "unnamed",
        uploaded_by=user,
        size_bytes=size,
        annotation_fps=project.annotation_fps,
    )
    try:
        check_video_filename(name)
        if size > settings.MAX_UPLOAD_BYTES:
            raise IngestError(
                f"The file is {size:,} bytes; "
                f"the upload limit is {settings.MAX_UPLOAD_BYTES:,} bytes"
            )
        with tempfile.TemporaryDirectory(prefix="ingest-") as tmp:
            local = Path(tmp) / "source"
            with local.open("wb") as out:
                shutil.copyfileobj(fileobj, out, length=1024 * 1024)
            probe = probe_video(local, video_limits())
            key = storage.put_path(source_key(video.pk, name), local)
    except IngestError as exc:
        Video.objects.filter(pk=video.pk).update(status=Video.Status.FAILED, error=str(exc))
        video.refresh_from_db()
        return video
    Video.objects.filter(pk=video.pk).update(
        source_key=key,
        codec=probe.codec,
        width=probe.width,
        height=probe.height,
        source_fps=probe.fps,
        duration=probe.duration,
    )
    video.refresh_from_db()
    do_create_job(
        Job.Kind.INGEST, args={"video_id": video.pk}, project=project, video=video, created_by=user
    )
    return video


def run_ingest_job(job_id: int) -> None:
    """Worker entry point: decode the job's video into frames. Safe to run twice. A failure
    removes the frames already written and marks the video failed with the reason."""
    run_job(
        job_id,
        lambda job, reporter: {"frame_count": _decode_and_store(_job_video(job), reporter)},
        expected=(IngestError,),
        internal_error="Internal error during ingest",
        on_failure=_fail_video,
    )


def _job_video(job: Job) -> Video:
    return Video.objects.get(pk=job.args["video_id"])


def fail_abandoned_ingest(job: Job, message: str) -> None:
    """The job recovery gave up on (its worker lost on every attempt): its video must not stay
    "decoding" forever. Frames already written are removed, as after a decoding error."""
    _fail_video(job, message)


def _fail_video(job: Job, message: str) -> None:
    video = Video.objects.filter(pk=job.args.get("video_id")).first()
    if video is None:
        return
    _discard_frames(video)
    if is_frameless(video):
        # An attached file that failed: the imported masks are still there, waiting for frames.
        Video.objects.filter(pk=video.pk).update(
            status=Video.Status.NO_FRAMES, error=message, progress=0.0
        )
        return
    Video.objects.filter(pk=video.pk).update(
        status=Video.Status.FAILED, error=message, progress=0.0, frame_count=0
    )


def _decode_and_store(video: Video, reporter: JobReporter) -> int:
    Video.objects.filter(pk=video.pk).update(status=Video.Status.DECODING, progress=0.0, error="")

    def report(fraction: float, message: str) -> None:
        reporter.progress(fraction, message)
        Video.objects.filter(pk=video.pk).update(progress=reporter.job.progress)

    with tempfile.TemporaryDirectory(prefix="decode-") as tmp:
        local = storage.download_to(video.source_key, Path(tmp) / "source")
        probe = probe_video(local, video_limits())
        frames = decode_frames(
            local,
            Path(tmp) / "frames",
            video.annotation_fps,
            probe.duration,
            on_progress=lambda f: report(0.5 * f, "decoding"),
        )
        # A re-run (redelivered job) overwrites the same keys; drop leftovers beyond the count.
        for index, path in enumerate(frames):
            storage.put_path(frame_key(video.pk, index), path)
            report(0.5 + 0.5 * (index + 1) / len(frames), f"stored frame {index + 1}/{len(frames)}")
        _delete_frames_from(video, len(frames))
        storage.delete_prefix(f"videos/{video.pk}/thumbs/")  # of a previous decode, if any
        frameless = is_frameless(video)
        needed = frames_needed(video) if frameless else 0
        if len(frames) < needed:
            raise IngestError(
                f"The file decodes to {len(frames)} frames at {video.annotation_fps:g} fps, but "
                f"the imported masks reach frame {needed - 1}; attach the file they were made on"
            )
        thumb = Path(tmp) / "thumbnail.jpg"
        with Image.open(frames[0]) as img:
            img.thumbnail(THUMBNAIL_SIZE)
            img.convert("RGB").save(thumb, "JPEG", quality=85)
        storage.put_path(thumbnail_key(video.pk), thumb)
    with transaction.atomic():
        Video.objects.filter(pk=video.pk).update(
            status=Video.Status.READY,
            progress=1.0,
            frame_count=len(frames),
            width=probe.width,
            height=probe.height,
            source_fps=probe.fps,
            duration=probe.duration,
            codec=probe.codec,
            thumbnail_key=thumbnail_key(video.pk),
        )
        if frameless:
            _welcome_frames(video)
    return len(frames)


def _welcome_frames(video: Video) -> None:
    """A frame-less video got its frames: record it and release the masklets held for them."""
    locked = Video.objects.select_for_update().get(pk=video.pk)
    release_held_masklets(locked)
    metadata = {**locked.metadata, "has_frames": True}
    metadata.pop("held_masklets", None)
    Video.objects.filter(pk=video.pk).update(metadata=metadata)


def _delete_frames_from(video: Video, first_unused: int) -> None:
    for key in list(storage.iter_keys(video.frames_prefix)):
        index = int(Path(key).stem)
        if index >= first_unused:
            storage.delete_key(key)


def _discard_frames(video: Video) -> None:
    storage.delete_prefix(video.frames_prefix)
    storage.delete_prefix(f"videos/{video.pk}/thumbs/")
    storage.delete_key(thumbnail_key(video.pk))
