"""SA-V training annotations: ``{video_id}_manual.json`` and ``{video_id}_auto.json``.

One file per video and kind. ``masklet`` is frame-major: ``masklet[t][k]`` is the COCO RLE
(or ``null``) of object ``k`` on annotated frame ``t`` (annotated frames are every 4th video
frame: 6 fps of 24). The per-masklet lists that follow are derived from the masks, except
``masklet_edited_frame_count`` and ``masklet_stability_score`` (annotation history and model
output), which are carried through.

Derived-field rules, checked against Meta's example files (all 14 masklets reproduce exactly):

* ``size_abs``: mean foreground area in pixels over the frames where the object is visible
  (area > 0); ``size_rel = size_abs / video_resolution``.
* ``size_bucket``: COCO's area ranges on ``size_abs``: < 32**2 "small", < 96**2 "medium", else
  "large".
* ``first_appeared_frame``: index of the first annotated frame with area > 0.
* ``visibility_changes``: visible <-> invisible flips *after* the first appearance (an object that
  appears on frame 113 and stays has 0 changes, not 1).
* ``frame_count``: number of annotated frames.

Meta's number formatting, reproduced by default (``SavStyle``): the manual file rounds
``size_rel``/``size_abs`` to 10 decimals and stores ``first_appeared_frame`` as a float
(``113.0``); the auto file keeps full float precision and stores it as an int. Video-level numbers
(frame count, height, width, resolution) are floats in both. A masklet that is never visible gets
``size_abs = size_rel = 0``, bucket "small" and ``first_appeared_frame = -1`` (our convention;
SA-V has none).

The writer streams: it writes each frame's row as it comes and keeps only O(objects) running
sums (plus the auto file's per-frame stability scores, floats), never the masks of past frames, so
its output is ``json.dumps`` of the whole document byte for byte without building it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np

from engine.datasets.formats._fields import finite, read_json, text, whole
from engine.masks.rle import (
    MAX_MASK_SIDE,
    Rle,
    as_compressed_rle,
    encode_rle,
    normalize_rle,
    rle_area,
)

MaskletType = Literal["manual", "auto"]
SizeBucket = Literal["small", "medium", "large"]
MaskLike = Rle | dict[str, Any] | np.ndarray | None

SMALL_MAX_AREA = 32**2
MEDIUM_MAX_AREA = 96**2


@dataclass(frozen=True)
class SavVideo:
    """Video-level fields. The file stores frame count, height, width and resolution as floats."""

    video_id: str
    duration: float
    frame_count: int
    height: int
    width: int
    environment: str = ""
    split: str = "train"

    @property
    def resolution(self) -> int:
        return self.height * self.width


@dataclass(frozen=True)
class MaskletStats:
    """Fields of one masklet derived from its masks (see module docstring for the rules)."""

    size_rel: float
    size_abs: float
    size_bucket: str
    visibility_changes: int
    first_appeared_frame: int
    frame_count: int


@dataclass
class SavMasklet:
    """One object of an SA-V file.

    ``frames[t]`` is its RLE on annotated frame ``t`` (``None`` = no mask stored there).
    ``stability_scores[t]`` exists for auto masklets only. ``stats`` are the numbers read from the
    file (or computed, for masklets built in code); ``compute_stats`` recomputes them from masks.
    """

    masklet_id: int
    frames: list[Rle | None]
    type: MaskletType = "manual"
    edited_frame_count: int = 0
    stability_scores: list[float] | None = None
    stats: MaskletStats | None = None


@dataclass
class SavAnnotation:
    """A whole SA-V file: one video, one kind (manual or auto), its masklets."""

    video: SavVideo
    masklet_type: MaskletType
    masklets: list[SavMasklet] = field(default_factory=list)

    @property
    def annotated_frame_count(self) -> int:
        return len(self.masklets[0].frames) if self.masklets else 0


@dataclass(frozen=True)
class SavStyle:
    """How numbers are written; ``SavStyle.for_type`` gives Meta's choices per file kind."""

    size_decimals: int | None
    first_appeared_as_float: bool

    @staticmethod
    def for_type(masklet_type: MaskletType) -> SavStyle:
        if masklet_type == "manual":
            return SavStyle(size_decimals=10, first_appeared_as_float=True)
        return SavStyle(size_decimals=None, first_appeared_as_float=False)


def size_bucket(size_abs: float) -> SizeBucket:
    """COCO-style size class of a mean area in pixels."""
    if size_abs < SMALL_MAX_AREA:
        return "small"
    if size_abs < MEDIUM_MAX_AREA:
        return "medium"
    return "large"


class MaskletStatsAccumulator:
    """Running statistics of one masklet, fed one area per annotated frame."""

    def __init__(self) -> None:
        self.frame_count = 0
        self.visible_frames = 0
        self.visible_area_sum = 0
        self.first_appeared_frame = -1
        self.visibility_changes = 0
        self._last_visible = False

    def add(self, area: int) -> None:
        visible = area > 0
        if visible:
            self.visible_frames += 1
            self.visible_area_sum += area
            if self.first_appeared_frame < 0:
                self.first_appeared_frame = self.frame_count
        if self.first_appeared_frame >= 0 and self.frame_count > self.first_appeared_frame:
            self.visibility_changes += int(visible != self._last_visible)
        self._last_visible = visible
        self.frame_count += 1

    def result(self, resolution: int) -> MaskletStats:
        size_abs = self.visible_area_sum / self.visible_frames if self.visible_frames else 0.0
        return MaskletStats(
            size_rel=size_abs / resolution,
            size_abs=size_abs,
            size_bucket=size_bucket(size_abs),
            visibility_changes=self.visibility_changes,
            first_appeared_frame=self.first_appeared_frame,
            frame_count=self.frame_count,
        )


def compute_stats(areas: Iterable[int], resolution: int) -> MaskletStats:
    """Derived fields from a masklet's per-annotated-frame areas (``None`` masks count as 0)."""
    acc = MaskletStatsAccumulator()
    for area in areas:
        acc.add(area)
    return acc.result(resolution)


def masklet_areas(masklet: SavMasklet) -> list[int]:
    """Per-frame foreground areas computed on the RLEs (no decoding)."""
    return [0 if rle is None else rle_area(rle) for rle in masklet.frames]


# ---------------------------------------------------------------------------------------------
# Reading


def read_sav(source: str | Path | IO[str]) -> SavAnnotation:
    """Parse one SA-V JSON file (path or text stream) into per-masklet form.

    Raises:
        ValueError: missing keys or inconsistent list lengths.
    """
    return parse_sav(read_json(source))


def parse_sav(doc: dict[str, Any]) -> SavAnnotation:
    """Turn an already-loaded SA-V document into a ``SavAnnotation``.

    Raises:
        ValueError: a missing field, a value of the wrong kind or out of range (NaN, infinite,
            negative or non-integral sizes and counts, text with NUL), inconsistent list lengths,
            or an invalid RLE (``engine.masks.rle.InvalidRle`` is a ``ValueError``). The message
            names the field.
    """
    if not isinstance(doc, dict):
        raise ValueError(f"an SA-V file holds a JSON object, not a JSON {type(doc).__name__}")
    try:
        video = _parse_video(doc)
        rows: list[list[Any]] = _listed(doc, "masklet")
        ids = [whole(i, "masklet_id") for i in _listed(doc, "masklet_id")]
    except KeyError as exc:
        raise ValueError(f"SA-V file lacks field {exc.args[0]!r}") from exc
    n = whole(doc.get("masklet_num", len(ids)), "masklet_num")
    if len(ids) != n:
        raise ValueError(f"masklet_num is {n} but masklet_id has {len(ids)} entries")
    for t, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != n:
            raise ValueError(f"annotated frame {t} of masklet should list {n} masks")
    types = _listed(doc, "masklet_type", default=["manual"] * n) or ["manual"] * n
    file_type: MaskletType = "auto" if types and types[0] == "auto" else "manual"
    scores = _stability_rows(doc, len(rows), n)

    def listed(key: str, k: int) -> Any:
        values = _listed(doc, key, default=[])
        return values[k] if k < len(values) else None

    masklets = []
    for k in range(n):
        stats = None
        if doc.get("masklet_size_abs") is not None:
            stats = MaskletStats(
                size_rel=finite(listed("masklet_size_rel", k) or 0, "masklet_size_rel"),
                size_abs=finite(listed("masklet_size_abs", k) or 0, "masklet_size_abs"),
                size_bucket=listed("masklet_size_bucket", k),
                visibility_changes=listed("masklet_visibility_changes", k),
                first_appeared_frame=listed("masklet_first_appeared_frame", k),
                frame_count=listed("masklet_frame_count", k),
            )
        frames = []
        for t, row in enumerate(rows):
            if row[k] is not None and not isinstance(row[k], dict):
                raise ValueError(f"masklet[{t}][{k}] is not an RLE object")
            frames.append(None if row[k] is None else normalize_rle(row[k]))
        edited = listed("masklet_edited_frame_count", k)
        masklets.append(
            SavMasklet(
                masklet_id=ids[k],
                frames=frames,
                type="auto" if types[k] == "auto" else "manual",
                edited_frame_count=whole(edited or 0, "masklet_edited_frame_count"),
                stability_scores=[r[k] for r in scores] if scores is not None else None,
                stats=stats,
            )
        )
    return SavAnnotation(video=video, masklet_type=file_type, masklets=masklets)


def _parse_video(doc: dict[str, Any]) -> SavVideo:
    video_id = doc["video_id"]
    if isinstance(video_id, int) and not isinstance(video_id, bool):
        video_id = str(whole(video_id, "video_id"))
    return SavVideo(
        video_id=text(video_id, "video_id"),
        duration=finite(doc["video_duration"], "video_duration"),
        frame_count=whole(doc["video_frame_count"], "video_frame_count"),
        height=whole(doc["video_height"], "video_height", minimum=1, maximum=MAX_MASK_SIDE),
        width=whole(doc["video_width"], "video_width", minimum=1, maximum=MAX_MASK_SIDE),
        environment=text(doc.get("video_environment", ""), "video_environment"),
        split=text(doc.get("video_split", ""), "video_split"),
    )


def _listed(doc: dict[str, Any], key: str, default: list[Any] | None = None) -> list[Any]:
    """``doc[key]``, which must be a list (``KeyError`` when absent and no default)."""
    value = doc[key] if default is None else doc.get(key, default)
    if value is None and default is not None:
        return default
    if not isinstance(value, list):
        raise ValueError(f"{key} must be a list, not a JSON {type(value).__name__}")
    return value


def _stability_rows(doc: dict[str, Any], frames: int, n: int) -> list[list[float]] | None:
    """Per-frame stability scores (auto files): one row of ``n`` scores in [0, 1] per frame."""
    scores = _listed(doc, "masklet_stability_score", default=[])
    if not scores or not isinstance(scores[0], list):
        return None  # manual files hold [null, ...] here
    if len(scores) != frames:
        raise ValueError(f"{len(scores)} stability rows for {frames} annotated frames")
    rows = []
    for t, row in enumerate(scores):
        if not isinstance(row, list) or len(row) != n:
            raise ValueError(f"masklet_stability_score[{t}] should list {n} scores")
        rows.append([finite(s, "masklet_stability_score", maximum=1.0) for s in row])
    return rows


# ---------------------------------------------------------------------------------------------
# Writing


def _as_rle(mask: MaskLike) -> Rle | None:
    if mask is None:
        return None
    if isinstance(mask, np.ndarray):
        return encode_rle(mask)
    return as_compressed_rle(mask)


class SavWriter:
    """Streams one SA-V file: header, then one ``write_frame`` per annotated frame, then ``close``.

    Memory: per object a few running sums, plus (auto) one stability float per object per frame.
    Usage::

        writer = SavWriter(stream, video, masklet_ids=[0, 1], masklet_type="manual")
        for t in range(n_annotated_frames):
            writer.write_frame([rle_obj0_t, rle_obj1_t])
        writer.close(edited_frame_counts=[3, 5])
    """

    def __init__(
        self,
        stream: IO[str],
        video: SavVideo,
        masklet_ids: Sequence[int],
        masklet_type: MaskletType,
        style: SavStyle | None = None,
    ) -> None:
        self._stream = stream
        self._video = video
        self._ids = [int(i) for i in masklet_ids]
        self._type: MaskletType = masklet_type
        self._style = style or SavStyle.for_type(masklet_type)
        self._stats = [MaskletStatsAccumulator() for _ in self._ids]
        self._stability_rows: list[list[float]] = []
        self._frames = 0
        self._closed = False
        header = {
            "video_id": video.video_id,
            "video_duration": float(video.duration),
            "video_frame_count": float(video.frame_count),
            "video_height": float(video.height),
            "video_width": float(video.width),
            "video_resolution": float(video.resolution),
            "video_environment": video.environment,
            "video_split": video.split,
        }
        # Open the header object and the "masklet" list; rows follow as they come.
        stream.write(json.dumps(header)[:-1] + ', "masklet": [')

    def write_frame(
        self, masks: Sequence[MaskLike], stability_scores: Sequence[float] | None = None
    ) -> None:
        """Append annotated frame ``t`` (the next one): one mask per masklet, in id order.

        Args:
            masks: RLE dicts, ``[H, W]`` bool arrays or ``None`` (no mask), one per masklet.
            stability_scores: one float per masklet; required for auto files, refused for manual.
        """
        if self._closed:
            raise RuntimeError("writer is closed")
        if len(masks) != len(self._ids):
            raise ValueError(f"got {len(masks)} masks for {len(self._ids)} masklets")
        if (stability_scores is None) != (self._type == "manual"):
            raise ValueError("auto files need per-frame stability scores; manual files have none")
        row: list[Rle | None] = []
        for k, mask in enumerate(masks):
            rle = _as_rle(mask)
            if rle is not None and rle["size"] != [self._video.height, self._video.width]:
                raise ValueError(
                    f"mask size {rle['size']} != video [H, W] "
                    f"[{self._video.height}, {self._video.width}]"
                )
            self._stats[k].add(0 if rle is None else rle_area(rle))
            row.append(rle)
        if stability_scores is not None:
            if len(stability_scores) != len(self._ids):
                raise ValueError("one stability score per masklet expected")
            self._stability_rows.append([float(s) for s in stability_scores])
        self._stream.write((", " if self._frames else "") + json.dumps(row))
        self._frames += 1

    def close(self, edited_frame_counts: Sequence[int] | None = None) -> None:
        """Write the per-masklet fields and the closing brace (does not close the stream)."""
        if self._closed:
            return
        n = len(self._ids)
        edited = [int(c) for c in edited_frame_counts] if edited_frame_counts else [0] * n
        if len(edited) != n:
            raise ValueError("one edited-frame count per masklet expected")
        stats = [acc.result(self._video.resolution) for acc in self._stats]
        decimals = self._style.size_decimals

        def fmt(x: float) -> float:
            return x if decimals is None else round(x, decimals)

        def first(x: int) -> float | int:
            return float(x) if self._style.first_appeared_as_float else x

        tail: dict[str, Any] = {
            "masklet_id": self._ids,
            "masklet_size_rel": [fmt(s.size_rel) for s in stats],
            "masklet_size_abs": [fmt(s.size_abs) for s in stats],
            "masklet_size_bucket": [s.size_bucket for s in stats],
            "masklet_visibility_changes": [s.visibility_changes for s in stats],
            "masklet_first_appeared_frame": [first(s.first_appeared_frame) for s in stats],
            "masklet_frame_count": [s.frame_count for s in stats],
            "masklet_edited_frame_count": edited,
            "masklet_type": [self._type] * n,
            "masklet_stability_score": self._stability_rows if self._type == "auto" else [None] * n,
            "masklet_num": n,
        }
        self._stream.write("], " + json.dumps(tail)[1:])
        self._closed = True

    @property
    def stats(self) -> list[MaskletStats]:
        """Derived fields of the frames written so far (full precision)."""
        return [acc.result(self._video.resolution) for acc in self._stats]


def write_sav(stream: IO[str], annotation: SavAnnotation, style: SavStyle | None = None) -> None:
    """Write a ``SavAnnotation`` through ``SavWriter``; derived fields are recomputed from masks."""
    masklets = annotation.masklets
    writer = SavWriter(
        stream,
        annotation.video,
        [m.masklet_id for m in masklets],
        annotation.masklet_type,
        style,
    )
    for t in range(annotation.annotated_frame_count):
        scores = None
        if annotation.masklet_type == "auto":
            scores = []
            for m in masklets:
                if m.stability_scores is None:
                    raise ValueError(f"auto masklet {m.masklet_id} has no stability scores")
                scores.append(m.stability_scores[t])
        writer.write_frame([m.frames[t] for m in masklets], scores)
    writer.close([m.edited_frame_count for m in masklets])
