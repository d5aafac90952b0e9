"""Reading import sources: SA-V JSON, DAVIS / YouTube-VOS folders and COCO JSON, into videos.

A source is one ``.json`` file (SA-V ``{video}_manual.json`` / ``{video}_auto.json``, or COCO), a
folder, or a ``.zip`` of either (for example one of our own exports). Readers parse and validate
without touching the database; :mod:`engine.datasets.importing` writes what they yield.

Frame indices: annotated frame i of the file (SA-V row i, PNG ``<i:05d>``, COCO ``frame_index``
i) becomes our frame i; see :mod:`engine.datasets.export`.

Bad input raises :class:`DatasetImportError` with a message fit for a 400 response.
"""

from __future__ import annotations

import re
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from engine.datasets.formats._fields import text, whole
from engine.datasets.formats.coco import parse_coco, tracks
from engine.datasets.formats.davis import (
    DavisLayout,
    iter_davis_frames,
    list_davis_videos,
    read_davis_video,
)
from engine.datasets.formats.sav import SavAnnotation, parse_sav
from engine.datasets.json_limits import JsonTooDeep, load_json
from engine.errors import InvalidInput
from engine.masklets.revisions import FrameMask
from engine.masks.rle import Rle, empty_rle
from engine.models import Masklet

IMPORT_FORMATS = ("sav", "davis", "coco")
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
            try:
                _safe_extract(path, root)
            except zipfile.BadZipFile as exc:  # e.g. a damaged central directory
                raise DatasetImportError(f"the zip is damaged: {exc}") from None
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
            if member.flag_bits & 0x1:
                raise DatasetImportError(f"the zip entry {member.filename!r} is encrypted")
        try:
            zf.extractall(root)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
            # A bad CRC, a truncated or corrupt member, an unsupported compression method.
            raise DatasetImportError(f"the zip is damaged: {exc}") from None


def _unwrap_single_folder(root: Path) -> Path:
    """The folder inside wrapper folders (``export/`` in ``export.zip``); never a DAVIS layout
    folder itself, so a zip holding only ``Annotations/`` stays a DAVIS source."""
    entries = [p for p in root.iterdir() if not p.name.startswith((".", "__MACOSX"))]
    layout = DavisLayout()
    davis_dirs = (layout.annotations_dir, layout.images_dir)
    if len(entries) == 1 and entries[0].is_dir() and entries[0].name not in davis_dirs:
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
            doc = load_json(fh)
    except JsonTooDeep as exc:
        raise DatasetImportError(f"{path.name}: {exc}") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too many digits
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
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
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
    if not isinstance(meta, dict):
        raise DatasetImportError("meta.json: 'videos' must be an object")
    for name in names:
        try:
            masks = read_davis_video(root, name)
            entry = _davis_meta_entry(meta.get(name))
        except (ValueError, OSError) as exc:
            raise DatasetImportError(f"DAVIS video {name}: {exc}") from None
        height, width = masks.frame_hw
        masklets = []
        for palette_index, frames in masks.masklets.items():
            info = entry["objects"].get(str(palette_index), {})
            masklets.append(
                ImportMasklet(
                    kind=info.get("kind", "manual"),
                    frames={t: FrameMask(rle, "import") for t, rle in frames.items()},
                    source_id=palette_index,
                    label=info.get("category", ""),
                    object_id=info.get("object_id"),
                )
            )
        frames_dir = root / DavisLayout().images_dir / name
        jpeg_indices = [i for i, _ in iter_davis_frames(root, name)] if frames_dir.is_dir() else []
        last = max([*masks.frame_indices, *jpeg_indices])
        frame_count = max(last + 1, entry["frame_count"])
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


def _davis_meta_entry(entry: Any) -> dict[str, Any]:
    """One video's ``meta.json`` entry, checked: ``{"frame_count": int, "objects": {palette
    index: {"kind", "category", "object_id"}}}`` with only the keys present and valid."""
    entry = entry or {}
    objects = entry.get("objects") or {} if isinstance(entry, dict) else None
    if not isinstance(objects, dict):
        raise ValueError("its meta.json entry must be an object with an 'objects' object")
    checked: dict[str, dict[str, Any]] = {}
    for key, info in objects.items():
        if not isinstance(info, dict):
            raise ValueError(f"meta.json object {key!r} must be an object")
        out: dict[str, Any] = {}
        if info.get("kind") in Masklet.Kind.values:
            out["kind"] = str(info["kind"])
        if info.get("category"):
            out["category"] = text(info["category"], "meta.json category", max_chars=200)
        if info.get("object_id") is not None:
            out["object_id"] = whole(info["object_id"], "meta.json object_id")
        checked[key] = out
    frame_count = whole(entry.get("frame_count") or 0, "meta.json frame_count")
    return {"frame_count": frame_count, "objects": checked}


def _read_coco(path: Path) -> Iterator[ImportVideo]:
    doc = _load_json(path)
    try:
        dataset = parse_coco(doc)
        grouped = tracks(dataset)
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
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
            and numbered_jpegs(frames_dir)
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


_FRAME_FILE = re.compile(r"^(\d+)\.jpe?g$", re.IGNORECASE)


def numbered_jpegs(folder: Path) -> list[tuple[int, Path]]:
    """``(frame index, path)`` of the ``<index>.jpg`` files of a folder, in index order."""
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _FRAME_FILE.match(p.name))]
    return sorted(found)


def count_source_units(source: Path, fmt: str) -> int:
    """How many files (SA-V, COCO) or video folders (DAVIS) a source holds, without parsing."""
    if fmt == "davis":
        return len(list_davis_videos(source))
    if source.is_dir():
        return len([p for p in source.glob("*.json") if p.name != "meta.json"])
    return 1
