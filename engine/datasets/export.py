"""Streamed exports of a dataset snapshot (SA-V JSON, DAVIS / YouTube-VOS folders, COCO JSON).

Exports read a :class:`~engine.models.DatasetSnapshot` (see :mod:`engine.datasets.snapshots`),
never the live masklets.

Frame indexing: our videos are decoded at the annotation fps, so *our frame index i is annotated
frame i*. SA-V annotates every 4th frame of 24 fps video (6 fps): SA-V row ``masklet[i]``, DAVIS
file ``Annotations/<video>/<i:05d>.png`` and COCO ``frame_index`` i all mean our frame i (the
original 24 fps frame is 4i; SA-V's ``video_frame_count`` counts 24 fps frames and is kept in
``Video.metadata``).

Memory: an export walks the snapshot one video at a time (``.iterator()`` over that video's
revisions) and holds only that video's compressed RLEs; frames are copied from storage one JPEG
at a time; the format writers stream into zip members. So the bound is set by the largest video,
not by the number of videos or masklets (``benchmarks/bench_export_db.py`` measures it), plus
about 0.5 KiB per zip member for the zip's central directory, which ``zipfile`` must keep until it
writes it at the end: negligible for SA-V and COCO (a few members), one entry per PNG / JPEG for
DAVIS (about 4.5 MiB per 10,000 annotated frames).

Video metadata written by imports and read here (all keys optional)::

    {"video_id": "sav_000001", "video_environment": "Indoor", "video_split": "train",
     "video_frame_count": 483.0, "video_duration": 20.125, "has_frames": false,
     "imported_masklets": {"<object id>": {"format": "sav", "kind": "manual", "masklet_id": 0,
                                           "edited_frame_count": 41, "revision_id": 12}}}
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from django.core.files.storage import default_storage
from django.db import transaction

from engine.datasets.formats.coco import CocoCategory, CocoVideo, CocoWriter
from engine.datasets.formats.davis import (
    MAX_OBJECT_ID,
    DavisLayout,
    OverlapRule,
    compose_index_mask,
    encode_index_png,
)
from engine.datasets.formats.sav import SavVideo, SavWriter
from engine.datasets.snapshots import (
    ExportError,
    ExportMasklet,
    ExportVideo,
    do_create_snapshot,
    iter_snapshot_videos,
    safe_stem,
)
from engine.jobs.lifecycle import JobReporter, do_create_job, run_job
from engine.models import DatasetSnapshot, Job, Masklet, Project, User, Video
from engine.videos import storage

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("sav", "davis", "coco")
Progress = Callable[[float, str], None]
"""``(fraction done in [0, 1], message)``; may raise to stop (e.g. ``JobCancelled``)."""


# ---------------------------------------------------------------------------------------------
# Export into a zip


@dataclass
class ExportStats:
    videos: int = 0
    masklets: int = 0
    masks: int = 0
    files: int = 0
    overlap_pixels: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "videos": self.videos,
            "masklets": self.masklets,
            "masks": self.masks,
            "files": self.files,
            "overlap_pixels": self.overlap_pixels,
        }


def export_snapshot(
    snapshot: DatasetSnapshot,
    fmt: str,
    out: Path | IO[bytes],
    *,
    progress: Progress | None = None,
    include_frames: bool = True,
) -> ExportStats:
    """Write the snapshot as a zip in format ``fmt`` ("sav", "davis" or "coco").

    Args:
        out: a path or a seekable binary stream receiving the zip.
        include_frames: copy the stored JPEG frames (DAVIS ``JPEGImages``; COCO ``file_name``s).
    """
    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    report = progress or (lambda _f, _m: None)
    total = max(1, snapshot.revisions.count())
    stats = ExportStats()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as zf:
        if fmt == "coco":
            _export_coco(snapshot, zf, stats, total, report, include_frames)
        else:
            # YouTube-VOS style meta.json (object ids, categories, frame names per video): its
            # entries grow with the dataset, so they are spooled to disk, then copied in last.
            with tempfile.SpooledTemporaryFile(256 * 1024, mode="w+", encoding="utf-8") as meta:
                for item in iter_snapshot_videos(snapshot):
                    if fmt == "sav":
                        _export_sav_video(item, zf, stats)
                    else:
                        entry = _export_davis_video(item, zf, stats, include_frames)
                        meta.write(
                            ("" if stats.videos == 0 else ", ")
                            + f"{json.dumps(item.name)}: {json.dumps(entry)}"
                        )
                    stats.videos += 1
                    stats.masklets += len(item.masklets)
                    report(stats.masklets / total, f"video {item.name}: {stats.masklets}/{total}")
                if fmt == "davis":
                    _copy_json_object(zf, "meta.json", "videos", meta)
    report(1.0, f"exported {stats.masklets} masklets, {stats.masks} masks")
    return stats


def _copy_json_object(zf: zipfile.ZipFile, name: str, key: str, spool: IO[str]) -> None:
    """Write ``{key: {<spooled "name": value pairs>}}`` as zip member ``name``, in chunks."""
    spool.seek(0)
    with _text_member(zf, name) as text:
        text.write(f"{{{json.dumps(key)}: {{")
        while chunk := spool.read(1 << 16):
            text.write(chunk)
        text.write("}}")


def _text_member(zf: zipfile.ZipFile, name: str) -> io.TextIOWrapper:
    info = zipfile.ZipInfo(name, date_time=time.gmtime()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED  # a bare ZipInfo would store it uncompressed
    raw = zf.open(info, "w", force_zip64=True)
    return io.TextIOWrapper(raw, encoding="utf-8")


def _add_binary(zf: zipfile.ZipFile, name: str, data: bytes, stats: ExportStats) -> None:
    # JPEG and PNG are compressed already: store them.
    zf.writestr(name, data, compress_type=zipfile.ZIP_STORED)
    stats.files += 1


# --- SA-V ---------------------------------------------------------------------------------


def sav_video_header(item: ExportVideo) -> SavVideo:
    """SA-V video-level fields: imported values from metadata, else derived from the video row."""
    video, meta = item.video, item.video.metadata or {}
    rows = item.row_count
    fps = float(video.annotation_fps or 6.0)
    duration = float(meta.get("video_duration") or video.duration or rows / fps)
    frame_count = meta.get("video_frame_count")
    if frame_count is None:
        frame_count = round(duration * video.source_fps) if video.source_fps else rows
    height, width = item.frame_hw
    return SavVideo(
        video_id=item.name,
        duration=duration,
        frame_count=int(frame_count),
        height=height,
        width=width,
        environment=str(meta.get("video_environment", "")),
        split=str(meta.get("video_split", "train")),
    )


def _sav_identity(item: ExportVideo, masklet: ExportMasklet) -> tuple[int, int]:
    """``(masklet_id, edited frame count)``: the imported values while the import is current."""
    imported = ((item.video.metadata or {}).get("imported_masklets") or {}).get(
        str(masklet.object_id)
    )
    if imported and imported.get("kind") == masklet.kind:
        masklet_id = int(imported.get("masklet_id", masklet.object_id))
        if imported.get("revision_id") == masklet.revision_id:
            return masklet_id, int(imported.get("edited_frame_count", 0))
        return masklet_id, len(set(masklet.edited_frames))
    return masklet.object_id, len(set(masklet.edited_frames))


def _export_sav_video(item: ExportVideo, zf: zipfile.ZipFile, stats: ExportStats) -> None:
    if not all(item.frame_hw):
        raise ExportError(f"video {item.name} has no width/height; it cannot be exported")
    header = sav_video_header(item)
    for kind in (Masklet.Kind.MANUAL, Masklet.Kind.AUTO):
        masklets = [m for m in item.masklets if m.kind == kind]
        if not masklets:
            continue
        identities = [_sav_identity(item, m) for m in masklets]
        name = f"{item.name}_{kind}.json"
        with _text_member(zf, name) as text:
            writer = SavWriter(text, header, [i for i, _ in identities], kind)  # type: ignore[arg-type]
            for t in range(item.row_count):
                cells = [m.frames.get(t) for m in masklets]
                masks = [c.rle if c is not None else None for c in cells]
                scores = None
                if kind == Masklet.Kind.AUTO:
                    scores = [float(c.stability or 0.0) if c is not None else 0.0 for c in cells]
                writer.write_frame(masks, scores)
                stats.masks += sum(1 for m in masks if m is not None)
            writer.close([count for _, count in identities])
        stats.files += 1


# --- DAVIS / YouTube-VOS --------------------------------------------------------------------


def _davis_object_ids(item: ExportVideo) -> dict[int, int]:
    """Our object id -> palette index 1..255, in object-id order (one PNG pixel, one object)."""
    if len(item.masklets) > MAX_OBJECT_ID:
        raise ExportError(
            f"video {item.name} has {len(item.masklets)} masklets; a DAVIS PNG holds at most "
            f"{MAX_OBJECT_ID}; export it as SA-V or COCO"
        )
    return {m.object_id: rank for rank, m in enumerate(item.masklets, start=1)}


def _stored_frames(video: Video, indices: Iterable[int]) -> Iterator[tuple[int, bytes]]:
    for index in indices:
        key = video.frame_key(index)
        if default_storage.exists(key):
            yield index, storage.read_bytes(key)


def _export_davis_video(
    item: ExportVideo, zf: zipfile.ZipFile, stats: ExportStats, include_frames: bool
) -> dict[str, Any]:
    """Write one video's frames and PNGs; return its ``meta.json`` entry."""
    layout = DavisLayout()
    hw = item.frame_hw
    if not all(hw):
        raise ExportError(f"video {item.name} has no width/height; it cannot be exported")
    palette_ids = _davis_object_ids(item)
    if include_frames and (item.video.metadata or {}).get("has_frames", True):
        for index, jpeg in _stored_frames(item.video, range(item.row_count)):
            _add_binary(
                zf, f"{layout.images_dir}/{item.name}/{layout.frame_stem(index)}.jpg", jpeg, stats
            )
    frames = item.annotated_frames
    for t in frames:
        masks = {}
        for m in item.masklets:
            cell = m.frames.get(t)
            if cell is not None and cell.rle is not None:
                masks[palette_ids[m.object_id]] = cell.rle
                stats.masks += 1
        index_image, lost = compose_index_mask(masks, hw, OverlapRule.HIGHER_ID_WINS)
        stats.overlap_pixels += lost
        name = f"{layout.annotations_dir}/{item.name}/{layout.frame_stem(t)}.png"
        _add_binary(zf, name, encode_index_png(index_image), stats)
    return {
        "width": hw[1],
        "height": hw[0],
        "frame_count": item.row_count,
        "objects": {
            str(palette_ids[m.object_id]): {
                "category": m.label,
                "object_id": m.object_id,
                "kind": m.kind,
                "frames": [layout.frame_stem(t) for t in sorted(m.frames)],
            }
            for m in item.masklets
        },
    }


# --- COCO -----------------------------------------------------------------------------------


def _export_coco(
    snapshot: DatasetSnapshot,
    zf: zipfile.ZipFile,
    stats: ExportStats,
    total: int,
    report: Progress,
    include_frames: bool,
) -> None:
    labels = sorted(set(snapshot.revisions.values_list("masklet__label", flat=True)))
    category_ids = {label: i for i, label in enumerate(labels, start=1)}
    categories = [CocoCategory(i, label or "object") for label, i in category_ids.items()]
    info = {"description": f"snapshot {snapshot.pk} of project {snapshot.project.name}"}
    layout = DavisLayout()
    # Frames go into the zip after the JSON member is closed (one open member at a time), so
    # JPEG copying is a second, cheap pass over video ids.
    frame_lists: list[tuple[Video, str, int]] = []
    with _text_member(zf, "annotations.json") as text:
        writer = CocoWriter(text, categories, info)
        for item in iter_snapshot_videos(snapshot):
            hw = item.frame_hw
            writer.add_video(CocoVideo(item.video.pk, item.name, hw[0], hw[1], item.row_count))
            image_ids = {
                t: writer.add_image(
                    video_id=item.video.pk,
                    frame_index=t,
                    file_name=f"{layout.images_dir}/{item.name}/{layout.frame_stem(t)}.jpg",
                    height=hw[0],
                    width=hw[1],
                )
                for t in item.annotated_frames
            }
            for m in item.masklets:
                for t, cell in sorted(m.frames.items()):
                    if cell.rle is None:
                        continue
                    written = writer.add_annotation(
                        image_id=image_ids[t],
                        track_id=m.masklet_pk,
                        category_id=category_ids[m.label],
                        mask=cell.rle,
                        score=cell.stability if m.kind == Masklet.Kind.AUTO else None,
                    )
                    stats.masks += int(written is not None)
            stats.videos += 1
            stats.masklets += len(item.masklets)
            frame_lists.append((item.video, item.name, item.row_count))
            report(0.9 * stats.masklets / total, f"video {item.name}: {stats.masklets}/{total}")
        writer.close()
    stats.files += 1
    if include_frames:
        for video, name, rows in frame_lists:
            if not (video.metadata or {}).get("has_frames", True):
                continue
            for index, jpeg in _stored_frames(video, range(rows)):
                _add_binary(
                    zf, f"{layout.images_dir}/{name}/{layout.frame_stem(index)}.jpg", jpeg, stats
                )


# ---------------------------------------------------------------------------------------------
# Export jobs


def export_key(job_id: int, filename: str) -> str:
    """Storage key of an export's zip: keyed by job id, so a re-run overwrites it."""
    return f"exports/{job_id}/{filename}"


def export_filename(snapshot: DatasetSnapshot, fmt: str) -> str:
    project = safe_stem(snapshot.project.name) or "project"
    return f"{project}-{fmt}-snapshot{snapshot.pk}.zip"


@transaction.atomic
def do_start_export(
    project: Project,
    *,
    user: User | None,
    fmt: str,
    snapshot: DatasetSnapshot | None = None,
    video_ids: Sequence[int] | None = None,
    kinds: Sequence[str] | None = None,
) -> Job:
    """Create a snapshot (unless given) and queue an export job that reads it."""
    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; use one of {', '.join(EXPORT_FORMATS)}")
    if snapshot is None:
        snapshot = do_create_snapshot(project, user=user, video_ids=video_ids, kinds=kinds)
    elif snapshot.project.pk != project.pk:
        raise ExportError(f"snapshot {snapshot.pk} belongs to another project")
    return do_create_job(
        Job.Kind.EXPORT,
        args={"snapshot_id": snapshot.pk, "format": fmt},
        project=project,
        created_by=user,
    )


def run_export_job(job_id: int) -> None:
    """Worker entry point: write the job's snapshot as a zip into storage. Safe to run twice."""
    run_job(
        job_id,
        _export_work,
        expected=(ExportError, DatasetSnapshot.DoesNotExist),
        internal_error="internal error during export",
    )


def _export_work(job: Job, reporter: JobReporter) -> dict[str, Any]:
    snapshot = DatasetSnapshot.objects.select_related("project").get(pk=job.args["snapshot_id"])
    fmt = str(job.args["format"])
    filename = export_filename(snapshot, fmt)
    with tempfile.TemporaryDirectory(prefix="export-") as tmp:
        path = Path(tmp) / filename
        stats = export_snapshot(
            snapshot, fmt, path, progress=lambda f, m: reporter.progress(0.95 * f, m)
        )
        reporter.progress(0.96, "uploading the zip", force=True)
        key = storage.put_path(export_key(job.pk, filename), path)
        size = path.stat().st_size
    return {
        "key": key,
        "filename": filename,
        "format": fmt,
        "bytes": size,
        "snapshot_id": snapshot.pk,
        **stats.as_dict(),
    }
