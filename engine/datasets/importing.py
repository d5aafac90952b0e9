"""Import masklets read from SA-V, DAVIS / YouTube-VOS or COCO sources into a project.

Each video's masklets (read by :mod:`engine.datasets.import_readers`) are created through
:func:`engine.masklets.revisions.do_create_masklet` with frame source ``"import"`` (SA-V stability
scores kept per frame, COCO ``score`` likewise), in one transaction per video and file, into:

* an existing video of the project, matched by name (``--video`` / ``video_name`` overrides it),
  by ``metadata["video_id"]`` or by file stem (``cup`` matches ``cup.mp4``); its width and height
  must equal the masks', and the annotated frames must fit in its frames; or
* a new *frame-less* video record (status ``no_frames``, ``metadata["has_frames"] = False``)
  carrying width, height, frame count and the file's video-level fields, when only annotations
  exist (Meta's SA-V example has no video file). DAVIS JPEGs, when present, become its frames
  (status ready). A frame-less video stays out of the annotation queue, and masklets imported
  into it for review or fixing are *held* as drafts (``metadata["held_masklets"]``) until its
  video file is attached (:mod:`engine.videos.attach`), so nobody reviews them on a black canvas.

Imported masklets are submitted for review by default (the page, the API and the command
agree); ``verified`` marks them ground truth (in their revision note and the video's
``imported_masklets`` entry).

Re-running an import (a retried job) skips masklets already imported from the same file, format,
kind and source id, so nothing is doubled. Bad input raises
:class:`~engine.datasets.import_readers.DatasetImportError` with a message fit for a 400 response
and changes nothing for that video.
"""

from __future__ import annotations

import logging
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.db import transaction

from engine.datasets.import_readers import (
    DatasetImportError,
    ImportVideo,
    count_source_units,
    detect_format,
    numbered_jpegs,
    opened_source,
    read_import,
)
from engine.jobs.lifecycle import JobReporter, do_create_job, run_job
from engine.masklets.revisions import InvalidMask, do_create_masklet
from engine.models import Job, Masklet, Project, User, Video, frame_key
from engine.videos import storage

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]

#: Statuses that would put a masklet in a queue (review, fixing): held as drafts in a video
#: without frames until its file is attached.
HELD_STATUSES = (Masklet.Status.SUBMITTED, Masklet.Status.NEEDS_FIX)


# ---------------------------------------------------------------------------------------------
# Writing to the database


@dataclass
class VideoImportResult:
    video_id: int
    name: str
    created: bool
    masklets: int
    skipped: int
    annotated_frames: int
    kinds: dict[str, int]


@dataclass
class ImportReport:
    videos: list[VideoImportResult] = field(default_factory=list)

    @property
    def masklets(self) -> int:
        return sum(v.masklets for v in self.videos)

    def as_dict(self) -> dict[str, Any]:
        return {"masklets": self.masklets, "videos": [v.__dict__ for v in self.videos]}


def find_video(project: Project, name: str) -> Video | None:
    """The project's video called ``name``: by name, SA-V ``video_id`` or file stem.

    Raises:
        DatasetImportError: several videos match.
    """
    for query in (
        Video.objects.filter(project=project, name=name),
        Video.objects.filter(project=project, metadata__video_id=name),
    ):
        found = list(query[:2])
        if len(found) > 1:
            raise DatasetImportError(
                f"several videos of the project are named {name!r}; "
                "choose one with --video / video_name"
            )
        if found:
            return found[0]
    stems = [
        v
        for v in Video.objects.filter(project=project, name__startswith=f"{name}.")
        if Path(v.name).stem == name
    ]
    if len(stems) > 1:
        raise DatasetImportError(f"several videos of the project match {name!r}")
    return stems[0] if stems else None


def _check_fits(video: Video, item: ImportVideo) -> None:
    if video.width and video.height and (video.width, video.height) != (item.width, item.height):
        raise DatasetImportError(
            f"{item.source}: masks are {item.width}x{item.height} (W x H) but video "
            f"{video.name!r} is {video.width}x{video.height}"
        )
    last = max((t for m in item.masklets for t in m.frames), default=-1)
    if video.frame_count and last >= video.frame_count:
        raise DatasetImportError(
            f"{item.source}: annotations reach frame {last}, but video {video.name!r} has "
            f"{video.frame_count} frames at {video.annotation_fps:g} fps"
        )


def check_import(
    project: Project, path: Path, fmt: str | None = None, video_name: str | None = None
) -> list[dict[str, Any]]:
    """Read and validate a source without writing anything; a summary per video and file."""
    summary = []
    with opened_source(path) as source:
        names = set()
        for item in read_import(source, fmt):
            names.add(item.name)
            if video_name and len(names) > 1:
                raise DatasetImportError("a target video name fits a single-video source only")
            video = find_video(project, video_name or item.name)
            if video is not None:
                _check_fits(video, item)
            summary.append(
                {
                    "video": video_name or item.name,
                    "format": item.fmt,
                    "masklets": len(item.masklets),
                    "annotated_frames": item.frame_count,
                    "existing_video": video.pk if video else None,
                }
            )
    if not summary:
        raise DatasetImportError(f"nothing to import in {path.name}")
    return summary


def _create_video(project: Project, name: str, item: ImportVideo, author: User | None) -> Video:
    fps = item.annotation_fps or project.annotation_fps
    return Video.objects.create(
        project=project,
        name=name[:255],
        status=Video.Status.NO_FRAMES,
        progress=0.0,
        width=item.width,
        height=item.height,
        frame_count=item.frame_count,
        annotation_fps=fps,
        source_fps=item.source_fps,
        duration=item.duration if item.duration is not None else item.frame_count / fps,
        metadata={**item.metadata, "has_frames": False, "imported_from": item.fmt},
        uploaded_by=author,
    )


def _store_frames(video: Video, frames_dir: Path) -> int:
    count = 0
    for index, path in numbered_jpegs(frames_dir):
        storage.put_path(frame_key(video.pk, index), path)
        count += 1
    return count


@transaction.atomic
def do_import_video(
    project: Project,
    item: ImportVideo,
    *,
    author: User | None = None,
    status: str = Masklet.Status.SUBMITTED,
    video_name: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> VideoImportResult:
    """Create one file's masklets in its (found or new) video; locks the video row.

    Masklets already imported from the same source (file, format, kind, source id) are skipped.
    """
    if status not in Masklet.Status.values:
        raise DatasetImportError(f"unknown masklet status {status!r}")
    name = video_name or item.name
    video = find_video(project, name)
    created = video is None
    if video is None:
        video = _create_video(project, name, item, author)
        if item.frames_dir is not None:
            stored = _store_frames(video, item.frames_dir)
            Video.objects.filter(pk=video.pk).update(
                metadata={**video.metadata, "has_frames": stored > 0},
                status=Video.Status.READY if stored else Video.Status.NO_FRAMES,
                progress=1.0 if stored else 0.0,
            )
    video = Video.objects.select_for_update().get(pk=video.pk)
    _check_fits(video, item)
    metadata = dict(video.metadata or {})
    if item.fmt == "sav":
        metadata.update(item.metadata)
    imported: dict[str, Any] = dict(metadata.get("imported_masklets") or {})
    held: dict[str, str] = dict(metadata.get("held_masklets") or {})
    hold = video.status == Video.Status.NO_FRAMES and status in HELD_STATUSES
    ground_truth = status == Masklet.Status.VERIFIED
    existing_objects = set(Masklet.objects.filter(video=video).values_list("object_id", flat=True))
    done = {
        (e["format"], e["kind"], e["source_id"], e["source"])
        for oid, e in imported.items()
        if int(oid) in existing_objects
    }
    result = VideoImportResult(video.pk, video.name, created, 0, 0, item.frame_count, {})
    for masklet_in in item.masklets:
        key = (item.fmt, masklet_in.kind, masklet_in.source_id, item.source)
        if key in done:
            result.skipped += 1
            continue
        wanted = masklet_in.object_id
        object_id = wanted if wanted is not None and wanted not in existing_objects else None
        try:
            masklet = do_create_masklet(
                video,
                author=author,
                frames=masklet_in.frames,
                object_id=object_id,
                kind=masklet_in.kind,
                status=Masklet.Status.DRAFT if hold else status,
                label=masklet_in.label,
                note=f"imported {'as ground truth ' if ground_truth else ''}"
                f"from {item.fmt} {item.source}",
            )
        except InvalidMask as exc:
            raise DatasetImportError(f"{item.source}: {exc}") from None
        existing_objects.add(masklet.object_id)
        assert masklet.current_revision is not None
        imported[str(masklet.object_id)] = {
            "format": item.fmt,
            "kind": masklet_in.kind,
            "source_id": masklet_in.source_id,
            "source": item.source,
            "masklet_id": masklet_in.source_id,
            "edited_frame_count": masklet_in.edited_frame_count,
            "revision_id": masklet.current_revision.pk,
            "ground_truth": ground_truth,
        }
        if hold:
            held[str(masklet.pk)] = status
        result.masklets += 1
        result.kinds[masklet_in.kind] = result.kinds.get(masklet_in.kind, 0) + 1
        if progress:
            progress(1)
    metadata["imported_masklets"] = imported
    if held:
        metadata["held_masklets"] = held
    Video.objects.filter(pk=video.pk).update(metadata=metadata)
    return result


def import_path(
    project: Project,
    path: Path,
    *,
    fmt: str | None = None,
    video_name: str | None = None,
    author: User | None = None,
    status: str = Masklet.Status.SUBMITTED,
    progress: Progress | None = None,
) -> ImportReport:
    """Import every video of a file, folder or zip (one transaction per video and file).

    Progress counts source units (JSON files, or DAVIS video folders) and masklets within them;
    files are parsed once, except that naming a target video first checks that the source holds
    a single video.
    """
    report = ImportReport()
    say = progress or (lambda _f, _m: None)
    with opened_source(path) as source:
        fmt = fmt or detect_format(source)
        if video_name and len({item.name for item in read_import(source, fmt)}) > 1:
            raise DatasetImportError("a target video name fits a single-video source only")
        total = max(1, count_source_units(source, fmt))
        for unit, item in enumerate(read_import(source, fmt)):
            tracker = _UnitProgress(say, min(unit, total - 1), total, item)
            report.videos.append(
                do_import_video(
                    project,
                    item,
                    author=author,
                    status=status,
                    video_name=video_name,
                    progress=tracker.step,
                )
            )
    say(1.0, f"imported {report.masklets} masklets")
    return report


class _UnitProgress:
    """Turns "one more masklet of this unit" into an overall fraction."""

    def __init__(self, say: Progress, unit: int, total: int, item: ImportVideo) -> None:
        self.say, self.unit, self.total, self.item = say, unit, total, item
        self.done = 0
        self.n = max(1, len(item.masklets))

    def step(self, count: int) -> None:
        self.done += count
        fraction = (self.unit + self.done / self.n) / self.total
        self.say(fraction, f"{self.item.source}: {self.done}/{self.n} masklets")


# ---------------------------------------------------------------------------------------------
# Import jobs


def import_key(job_id: int, filename: str) -> str:
    return f"imports/{job_id}/{filename}"


_SAFE_FILE = re.compile(r"[^A-Za-z0-9_.-]+")


def do_start_import(
    project: Project,
    *,
    user: User | None,
    fileobj: IO[bytes],
    filename: str,
    fmt: str | None = None,
    video_name: str | None = None,
    status: str = Masklet.Status.SUBMITTED,
) -> Job:
    """Validate an uploaded file at once (4xx material), store it, and queue an import job."""
    safe_name = _SAFE_FILE.sub("_", Path(filename or "upload").name) or "upload"
    if status not in Masklet.Status.values:
        raise DatasetImportError(f"unknown masklet status {status!r}")
    with tempfile.TemporaryDirectory(prefix="upload-") as tmp:
        local = Path(tmp) / safe_name
        with local.open("wb") as out:
            shutil.copyfileobj(fileobj, out, length=1024 * 1024)
        summary = check_import(project, local, fmt, video_name)
        with transaction.atomic():
            job = do_create_job(
                Job.Kind.IMPORT,
                args={
                    "format": fmt,
                    "video_name": video_name,
                    "status": status,
                    "filename": safe_name,
                    "summary": summary,
                },
                project=project,
                created_by=user,
            )
            key = storage.put_path(import_key(job.pk, safe_name), local)
            job.args["key"] = key
            Job.objects.filter(pk=job.pk).update(args=job.args)
    return job


def run_import_job(job_id: int) -> None:
    """Worker entry point: import the job's stored upload. A re-run skips what it already made."""
    run_job(
        job_id,
        _import_work,
        expected=(DatasetImportError,),
        internal_error="internal error during import",
    )


def _import_work(job: Job, reporter: JobReporter) -> dict[str, Any]:
    args = job.args
    project = job.project
    if project is None:
        raise DatasetImportError("the import job names no project")
    with tempfile.TemporaryDirectory(prefix="import-job-") as tmp:
        local = storage.download_to(args["key"], Path(tmp) / args["filename"])
        report = import_path(
            project,
            local,
            fmt=args.get("format"),
            video_name=args.get("video_name"),
            author=job.created_by,
            status=args.get("status") or Masklet.Status.SUBMITTED,
            progress=lambda f, m: reporter.progress(f, m),
        )
    return report.as_dict()
