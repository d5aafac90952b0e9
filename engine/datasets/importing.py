"""Import masklets from SA-V JSON, DAVIS / YouTube-VOS folders and COCO JSON files.

Sources: one ``.json`` file (SA-V ``{video}_manual.json`` / ``{video}_auto.json``, or COCO), a
folder, or a ``.zip`` of either (for example one of our own exports). Each video's masklets are
created through :func:`engine.masklets.revisions.do_create_masklet` with frame source ``"import"``
(SA-V stability scores kept per frame, COCO ``score`` likewise), in one transaction per video and
file, into:

* an existing video of the project, matched by name (``--video`` / ``video_name`` overrides it),
  by ``metadata["video_id"]`` or by file stem (``cup`` matches ``cup.mp4``); its width and height
  must equal the masks', and the annotated frames must fit in its frames; or
* a new *frame-less* video record (status ready, ``metadata["has_frames"] = False``) carrying
  width, height, frame count and the file's video-level fields, when only annotations exist
  (Meta's SA-V example has no video file). DAVIS JPEGs, when present, become its frames.

Frame indices: annotated frame i of the file (SA-V row i, PNG ``<i:05d>``, COCO ``frame_index``
i) becomes our frame i; see :mod:`engine.datasets.export`.

Re-running an import (a retried job) skips masklets already imported from the same file, format,
kind and source id, so nothing is doubled. Bad input raises :class:`DatasetImportError` with a
message fit for a 400 response and changes nothing for that video.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.conf import settings
from django.db import transaction

from engine.datasets.formats.coco import read_coco, tracks
from engine.datasets.formats.davis import (
    DavisLayout,
    iter_davis_frames,
    list_davis_videos,
    read_davis_video,
)
from engine.datasets.formats.sav import SavAnnotation, parse_sav
from engine.errors import InvalidInput
from engine.jobs.lifecycle import JobReporter, do_create_job, run_job
from engine.masklets.revisions import FrameMask, InvalidMask, do_create_masklet
from engine.masks.rle import Rle, empty_rle
from engine.models import Job, Masklet, Project, User, Video, frame_key
from engine.videos import storage

logger = logging.getLogger(__name__)

IMPORT_FORMATS = ("sav", "davis", "coco")
Progress = Callable[[float, str], None]
SAV_FRAME_STRIDE_HINT = 4  # SA-V: 24 fps video annotated at 6 fps
_MAX_ZIP_MEMBERS = 200_000


class DatasetImportError(InvalidInput):
    """A file that cannot be imported as asked (HTTP 400); the message says why."""


@dataclass
class ImportMasklet:
    """One masklet read from a file. ``frames`` maps our frame index to its mask."""

    kind: str
    frames: dict[int, FrameMask]
    source_id: int
    label: str = ""
    object_id: int | None = None
    edited_frame_count: int = 0


@dataclass
class ImportVideo:
    """One video's annotations read from one file (or folder)."""

    name: str
    fmt: str
    source: str
    width: int
    height: int
    frame_count: int
    masklets: list[ImportMasklet]
    metadata: dict[str, Any] = field(default_factory=dict)
    duration: float | None = None
    source_fps: float | None = None
    annotation_fps: float | None = None
    frames_dir: Path | None = None


# ---------------------------------------------------------------------------------------------
# Reading sources


@contextmanager
def opened_source(path: Path) -> Iterator[Path]:
    """Yield a file or folder to read: a ``.zip`` is extracted (safely) to a temporary folder."""
    if not path.exists():
        raise DatasetImportError(f"{path} does not exist")
    if path.is_file() and zipfile.is_zipfile(path):
        with tempfile.TemporaryDirectory(prefix="import-") as tmp:
            root = Path(tmp)
            _safe_extract(path, root)
            yield _unwrap_single_folder(root)
        return
    yield path


def _safe_extract(archive: Path, root: Path) -> None:
    limit = int(getattr(settings, "MAX_UPLOAD_BYTES", 2 * 1024**3)) * 4
    with zipfile.ZipFile(archive) as zf:
        members = zf.infolist()
        if len(members) > _MAX_ZIP_MEMBERS:
            raise DatasetImportError(
                f"the zip has {len(members)} entries; at most {_MAX_ZIP_MEMBERS} are accepted"
            )
        if sum(m.file_size for m in members) > limit:
            raise DatasetImportError("the zip expands to more than the allowed size")
        for member in members:
            target = (root / member.filename).resolve()
            if not target.is_relative_to(root.resolve()) or member.filename.startswith("/"):
                raise DatasetImportError(f"the zip entry {member.filename!r} escapes its folder")
        zf.extractall(root)


def _unwrap_single_folder(root: Path) -> Path:
    entries = [p for p in root.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    if len(entries) == 1 and entries[0].is_dir():
        return _unwrap_single_folder(entries[0])
    return root


def detect_format(path: Path) -> str:
    """ "sav", "davis" or "coco" from a file's keys or a folder's layout."""
    if path.is_dir():
        if (path / DavisLayout().annotations_dir).is_dir():
            return "davis"
        jsons = sorted(path.glob("*.json"))
        if not jsons:
            raise DatasetImportError(
                "the folder holds neither an Annotations/ folder (DAVIS) nor JSON files"
            )
        formats = {detect_format(p) for p in jsons if p.name != "meta.json"}
        if len(formats) != 1:
            raise DatasetImportError(f"the folder mixes formats: {sorted(formats)}")
        return formats.pop()
    doc = _load_json(path)
    if "masklet" in doc:
        return "sav"
    if "annotations" in doc and "images" in doc:
        return "coco"
    raise DatasetImportError(
        f"{path.name} is neither SA-V (no 'masklet' field) nor COCO (no 'annotations'/'images')"
    )


def _load_json(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as fh:
            doc = json.load(fh)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetImportError(f"{path.name} is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise DatasetImportError(f"{path.name} holds a JSON {type(doc).__name__}, not an object")
    return doc


def read_import(path: Path, fmt: str | None = None) -> Iterator[ImportVideo]:
    """Parse a file or folder (already extracted) into videos, one at a time."""
    fmt = fmt or detect_format(path)
    if fmt not in IMPORT_FORMATS:
        raise DatasetImportError(f"unknown format {fmt!r}; use one of {', '.join(IMPORT_FORMATS)}")
    if fmt == "davis":
        if not path.is_dir():
            raise DatasetImportError("a DAVIS import is a folder or a zip with Annotations/")
        yield from _read_davis(path)
        return
    files = (
        sorted(p for p in path.glob("*.json") if p.name != "meta.json") if path.is_dir() else [path]
    )
    for file in files:
        yield from (_read_sav(file) if fmt == "sav" else _read_coco(file))


def _check_rle_size(rle: Rle, height: int, width: int, where: str) -> None:
    if list(rle["size"]) != [height, width]:
        raise DatasetImportError(
            f"{where}: mask size {rle['size']} (H, W) does not match the video's "
            f"[{height}, {width}]"
        )


def _read_sav(path: Path) -> Iterator[ImportVideo]:
    try:
        annotation: SavAnnotation = parse_sav(_load_json(path))
    except DatasetImportError:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise DatasetImportError(f"{path.name} is not a valid SA-V file: {exc}") from None
    video = annotation.video
    rows = annotation.annotated_frame_count
    masklets = []
    for m in annotation.masklets:
        frames: dict[int, FrameMask] = {}
        for t, rle in enumerate(m.frames):
            if rle is not None:
                _check_rle_size(
                    rle, video.height, video.width, f"{path.name} masklet {m.masklet_id} frame {t}"
                )
            score = m.stability_scores[t] if m.stability_scores is not None else None
            frames[t] = FrameMask(rle, "import", score)
        masklets.append(
            ImportMasklet(
                kind=m.type,
                frames=frames,
                source_id=m.masklet_id,
                object_id=m.masklet_id,
                edited_frame_count=m.edited_frame_count,
            )
        )
    source_fps = video.frame_count / video.duration if video.duration > 0 else None
    stride = round(video.frame_count / rows) if rows else SAV_FRAME_STRIDE_HINT
    yield ImportVideo(
        name=video.video_id,
        fmt="sav",
        source=path.name,
        width=video.width,
        height=video.height,
        frame_count=rows,
        masklets=masklets,
        metadata={
            "video_id": video.video_id,
            "video_environment": video.environment,
            "video_split": video.split,
            "video_frame_count": float(video.frame_count),
            "video_duration": float(video.duration),
        },
        duration=float(video.duration),
        source_fps=source_fps,
        annotation_fps=source_fps / max(1, stride) if source_fps else None,
    )


def _read_davis(root: Path) -> Iterator[ImportVideo]:
    names = list_davis_videos(root)
    if not names:
        raise DatasetImportError("the DAVIS folder has no Annotations/<video>/ folders")
    meta_path = root / "meta.json"
    meta = _load_json(meta_path).get("videos", {}) if meta_path.is_file() else {}
    for name in names:
        try:
            masks = read_davis_video(root, name)
        except (ValueError, OSError) as exc:
            raise DatasetImportError(f"DAVIS video {name}: {exc}") from None
        objects = (meta.get(name) or {}).get("objects") or {}
        height, width = masks.frame_hw
        masklets = []
        for palette_index, frames in masks.masklets.items():
            info = objects.get(str(palette_index)) or {}
            kind = str(info["kind"]) if info.get("kind") in Masklet.Kind.values else "manual"
            object_id = info.get("object_id")
            masklets.append(
                ImportMasklet(
                    kind=kind,
                    frames={t: FrameMask(rle, "import") for t, rle in frames.items()},
                    source_id=palette_index,
                    label=str(info.get("category") or ""),
                    object_id=int(object_id) if isinstance(object_id, int) else None,
                )
            )
        frames_dir = root / DavisLayout().images_dir / name
        jpeg_indices = [i for i, _ in iter_davis_frames(root, name)] if frames_dir.is_dir() else []
        last = max([*masks.frame_indices, *jpeg_indices])
        frame_count = max(last + 1, int((meta.get(name) or {}).get("frame_count") or 0))
        yield ImportVideo(
            name=name,
            fmt="davis",
            source=name,
            width=width,
            height=height,
            frame_count=frame_count,
            masklets=masklets,
            frames_dir=frames_dir if jpeg_indices else None,
        )


def _read_coco(path: Path) -> Iterator[ImportVideo]:
    try:
        with path.open(encoding="utf-8") as fh:
            dataset = read_coco(fh)
        grouped = tracks(dataset)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetImportError(f"{path.name} is not JSON: {exc}") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise DatasetImportError(f"{path.name} is not a valid COCO file: {exc}") from None
    categories = {c.id: c.name for c in dataset.categories}
    videos = {v.id: v for v in dataset.videos}
    scored = {a.track_id for a in dataset.annotations if a.score is not None}
    scores = {(a.track_id, a.image_id): a.score for a in dataset.annotations}
    image_of = {(i.video_id, i.frame_index): i for i in dataset.images}
    for video_id in sorted({i.video_id for i in dataset.images}):
        images = sorted(
            (i for i in dataset.images if i.video_id == video_id), key=lambda i: i.frame_index
        )
        height, width = images[0].height, images[0].width
        if any((i.height, i.width) != (height, width) for i in images):
            raise DatasetImportError(f"{path.name}: video {video_id} mixes image sizes")
        info = videos.get(video_id)
        blank = empty_rle(height, width)
        masklets = []
        for track in sorted(
            (t for t in grouped.values() if t.video_id == video_id), key=lambda t: t.track_id
        ):
            frames: dict[int, FrameMask] = {}
            for image in images:
                rle = track.frames.get(image.frame_index)
                if rle is not None:
                    _check_rle_size(rle, height, width, f"{path.name} track {track.track_id}")
                score = scores.get((track.track_id, image_of[(video_id, image.frame_index)].id))
                frames[image.frame_index] = FrameMask(
                    rle if rle is not None else blank, "import", score
                )
            masklets.append(
                ImportMasklet(
                    kind="auto" if track.track_id in scored else "manual",
                    frames=frames,
                    source_id=track.track_id,
                    label=categories.get(track.category_id, ""),
                )
            )
        last = images[-1].frame_index
        # Frames travel along when the file names point at <index>.jpg files next to the JSON.
        frames_dir = (path.parent / images[0].file_name).parent if images[0].file_name else None
        if frames_dir is not None and not (
            frames_dir.resolve().is_relative_to(path.parent.resolve())  # no ../ escapes
            and frames_dir.is_dir()
            and _numbered_jpegs(frames_dir)
        ):
            frames_dir = None
        yield ImportVideo(
            name=info.name if info else f"coco_video_{video_id}",
            fmt="coco",
            source=path.name,
            width=width,
            height=height,
            frame_count=max(last + 1, info.frame_count if info else 0),
            masklets=masklets,
            frames_dir=frames_dir,
        )


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
        status=Video.Status.READY,
        progress=1.0,
        width=item.width,
        height=item.height,
        frame_count=item.frame_count,
        annotation_fps=fps,
        source_fps=item.source_fps,
        duration=item.duration if item.duration is not None else item.frame_count / fps,
        metadata={**item.metadata, "has_frames": False, "imported_from": item.fmt},
        uploaded_by=author,
    )


_FRAME_FILE = re.compile(r"^(\d+)\.jpe?g$", re.IGNORECASE)


def _numbered_jpegs(folder: Path) -> list[tuple[int, Path]]:
    """``(frame index, path)`` of the ``<index>.jpg`` files of a folder, in index order."""
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _FRAME_FILE.match(p.name))]
    return sorted(found)


def _store_frames(video: Video, frames_dir: Path) -> int:
    count = 0
    for index, path in _numbered_jpegs(frames_dir):
        storage.put_path(frame_key(video.pk, index), path)
        count += 1
    return count


@transaction.atomic
def do_import_video(
    project: Project,
    item: ImportVideo,
    *,
    author: User | None = None,
    status: str = Masklet.Status.VERIFIED,
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
                metadata={**video.metadata, "has_frames": stored > 0}
            )
    video = Video.objects.select_for_update().get(pk=video.pk)
    _check_fits(video, item)
    metadata = dict(video.metadata or {})
    if item.fmt == "sav":
        metadata.update(item.metadata)
    imported: dict[str, Any] = dict(metadata.get("imported_masklets") or {})
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
                status=status,
                label=masklet_in.label,
                note=f"imported from {item.fmt} {item.source}",
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
        }
        result.masklets += 1
        result.kinds[masklet_in.kind] = result.kinds.get(masklet_in.kind, 0) + 1
        if progress:
            progress(1)
    metadata["imported_masklets"] = imported
    Video.objects.filter(pk=video.pk).update(metadata=metadata)
    return result


def import_path(
    project: Project,
    path: Path,
    *,
    fmt: str | None = None,
    video_name: str | None = None,
    author: User | None = None,
    status: str = Masklet.Status.VERIFIED,
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
        total = max(1, _source_units(source, fmt))
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


def _source_units(source: Path, fmt: str) -> int:
    """How many files (SA-V, COCO) or video folders (DAVIS) a source holds, without parsing."""
    if fmt == "davis":
        return len(list_davis_videos(source))
    if source.is_dir():
        return len([p for p in source.glob("*.json") if p.name != "meta.json"])
    return 1


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
    status: str = Masklet.Status.VERIFIED,
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
            status=args.get("status") or Masklet.Status.VERIFIED,
            progress=lambda f, m: reporter.progress(f, m),
        )
    return report.as_dict()
