"""COCO JSON for video masklets: frames are ``images``, per-frame masks are ``annotations``.

Each annotation carries a COCO compressed RLE ``segmentation``, ``area``, ``bbox`` ``[x, y, w, h]``,
``category_id``, ``iscrowd: 0`` and ``track_id``, the masklet it belongs to (one track id per
masklet across its frames, as in YouTube-VIS / TAO-style files). Images carry ``video_id`` and
``frame_index``; a ``videos`` list describes the videos.

The writer streams annotations straight to the output and spools the small ``images`` and
``videos`` records to a temporary file (in memory up to 256 KiB, then on disk), appending them at
``close``. The writer remembers the sizes of the last 4,096 images only, to check annotations
against them. So memory stays flat however many masks and frames pass through, and frames and
masks can be written in any interleaving. JSON object key order carries no meaning, so
``annotations`` before ``images`` is still plain COCO for ``json.load`` and pycocotools.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from pycocotools import mask as coco_mask

from engine.datasets.formats._fields import finite, read_json, text, whole
from engine.masks.rle import (
    MAX_MASK_SIDE,
    Rle,
    as_compressed_rle,
    encode_rle,
    normalize_rle,
    rle_area,
    rle_bbox,
)

MaskLike = Rle | dict[str, Any] | np.ndarray | None

_SPOOL_BYTES = 256 * 1024
_SIZE_WINDOW = 4096  # images whose sizes are remembered to validate annotations


@dataclass(frozen=True)
class CocoCategory:
    id: int
    name: str
    supercategory: str = ""


@dataclass(frozen=True)
class CocoVideo:
    id: int
    name: str
    height: int
    width: int
    frame_count: int


@dataclass(frozen=True)
class CocoImage:
    id: int
    file_name: str
    height: int
    width: int
    video_id: int
    frame_index: int


@dataclass(frozen=True)
class CocoAnnotation:
    id: int
    image_id: int
    category_id: int
    track_id: int
    segmentation: Rle
    area: float
    bbox: tuple[float, float, float, float]
    score: float | None = None


class CocoWriter:
    """Streams one COCO JSON file. Call ``add_*`` in any order, then ``close``.

    Ids of images and annotations are assigned 1, 2, ... unless given.
    """

    def __init__(
        self,
        stream: IO[str],
        categories: Sequence[CocoCategory],
        info: dict[str, Any] | None = None,
        *,
        keep_empty: bool = False,
    ) -> None:
        """
        Args:
            stream: text stream receiving the JSON.
            categories: the category list (written first).
            info: COCO ``info`` block.
            keep_empty: write annotations for empty masks (area 0) instead of skipping them.
        """
        self._stream = stream
        self._keep_empty = keep_empty
        self._category_ids = {c.id for c in categories}
        # Insertion-ordered, trimmed to _SIZE_WINDOW: bounded memory on huge exports.
        self._image_hw: dict[int, tuple[int, int]] = {}
        self._video_ids: set[int] = set()
        # Both spools live until close(), which copies them out and closes them.
        self._images = tempfile.SpooledTemporaryFile(_SPOOL_BYTES, mode="w+", encoding="utf-8")  # noqa: SIM115
        self._videos = tempfile.SpooledTemporaryFile(_SPOOL_BYTES, mode="w+", encoding="utf-8")  # noqa: SIM115
        self._next_image_id = 1
        self._next_annotation_id = 1
        self._n_annotations = 0
        self._closed = False
        head = {
            "info": info or {"description": "masklets exported by sam2-data-engine"},
            "licenses": [],
            "categories": [
                {"id": c.id, "name": c.name, "supercategory": c.supercategory} for c in categories
            ],
        }
        stream.write(json.dumps(head)[:-1] + ', "annotations": [')

    def add_video(self, video: CocoVideo) -> None:
        if video.id in self._video_ids:
            raise ValueError(f"duplicate video id {video.id}")
        self._spool(self._videos, video.__dict__)
        self._video_ids.add(video.id)

    def add_image(
        self,
        *,
        video_id: int,
        frame_index: int,
        file_name: str,
        height: int,
        width: int,
        image_id: int | None = None,
    ) -> int:
        """Record one frame; returns its image id.

        Ids, given or assigned (1, 2, ...), must increase from call to call.
        """
        if image_id is None:
            image_id = self._next_image_id
        if image_id < self._next_image_id:
            # Ids only grow, so a duplicate is caught even after its size left the window.
            raise ValueError(
                f"duplicate or decreasing image id {image_id} (last {self._next_image_id - 1})"
            )
        self._next_image_id = image_id + 1
        image = CocoImage(image_id, file_name, height, width, video_id, frame_index)
        self._spool(self._images, image.__dict__)
        self._image_hw[image_id] = (height, width)
        if len(self._image_hw) > _SIZE_WINDOW:
            del self._image_hw[next(iter(self._image_hw))]
        return image_id

    def add_annotation(
        self,
        *,
        image_id: int,
        track_id: int,
        category_id: int,
        mask: MaskLike,
        score: float | None = None,
        annotation_id: int | None = None,
    ) -> int | None:
        """Write one mask of one masklet on one frame; returns its id (``None`` when skipped).

        Args:
            mask: ``[H, W]`` bool array or RLE; ``None`` (object absent) is skipped, and so is an
                empty mask unless ``keep_empty``.
        """
        if self._closed:
            raise RuntimeError("writer is closed")
        if image_id >= self._next_image_id:
            raise ValueError(f"unknown image id {image_id}: add_image first")
        if category_id not in self._category_ids:
            raise ValueError(f"unknown category id {category_id}")
        if mask is None:
            return None
        rle = encode_rle(mask) if isinstance(mask, np.ndarray) else as_compressed_rle(mask)
        expected_hw = self._image_hw.get(image_id)  # None: an old image, out of the window
        if expected_hw is not None and tuple(rle["size"]) != expected_hw:
            raise ValueError(f"mask size {rle['size']} != image {expected_hw}")
        area = rle_area(rle)
        if area == 0 and not self._keep_empty:
            return None
        if annotation_id is None:
            annotation_id = self._next_annotation_id
        self._next_annotation_id = max(self._next_annotation_id, annotation_id + 1)
        record: dict[str, Any] = {
            "id": annotation_id,
            "image_id": image_id,
            "category_id": category_id,
            "track_id": track_id,
            "segmentation": rle,
            "area": float(area),
            "bbox": list(rle_bbox(rle)),
            "iscrowd": 0,
        }
        if score is not None:
            record["score"] = float(score)
        self._stream.write((", " if self._n_annotations else "") + json.dumps(record))
        self._n_annotations += 1
        return annotation_id

    def close(self) -> None:
        """Append the spooled videos and images and close the JSON object (not the stream)."""
        if self._closed:
            return
        self._stream.write('], "videos": [')
        self._copy(self._videos)
        self._stream.write('], "images": [')
        self._copy(self._images)
        self._stream.write("]}")
        self._closed = True

    @property
    def annotation_count(self) -> int:
        return self._n_annotations

    def _spool(self, spool: IO[str], record: dict[str, Any]) -> None:
        spool.write(("" if spool.tell() == 0 else ", ") + json.dumps(record))

    def _copy(self, spool: IO[str]) -> None:
        spool.seek(0)
        while chunk := spool.read(1 << 16):
            self._stream.write(chunk)
        spool.close()


@dataclass
class CocoDataset:
    """A parsed COCO file."""

    categories: list[CocoCategory]
    videos: list[CocoVideo]
    images: list[CocoImage]
    annotations: list[CocoAnnotation]
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class CocoTrack:
    """One masklet: the annotations sharing a ``track_id``, keyed by (video id, frame index)."""

    track_id: int
    category_id: int
    video_id: int
    frames: dict[int, Rle]


def _segmentation_to_rle(segmentation: Any, height: int, width: int) -> Rle:
    if isinstance(segmentation, list):  # polygons: [[x0, y0, x1, y1, ...], ...]
        for polygon in segmentation:
            if not isinstance(polygon, list) or len(polygon) < 6 or len(polygon) % 2:
                raise ValueError("a polygon segmentation lists at least 3 (x, y) points")
            for v in polygon:
                finite(v, "polygon coordinate", minimum=-MAX_MASK_SIDE, maximum=2 * MAX_MASK_SIDE)
        merged = coco_mask.merge(coco_mask.frPyObjects(segmentation, height, width))
        return {"size": [height, width], "counts": merged["counts"].decode("ascii")}
    return normalize_rle(segmentation)


def read_coco(source: str | Path | IO[str]) -> CocoDataset:
    """Parse a COCO file. Polygon and uncompressed-RLE segmentations become compressed RLEs."""
    return parse_coco(read_json(source))


def parse_coco(doc: dict[str, Any]) -> CocoDataset:
    """Turn an already-loaded COCO document into a ``CocoDataset``.

    Raises:
        ValueError: a missing field, a value of the wrong kind or out of range (NaN, infinite,
            negative or non-integral ids and sizes, text with NUL), an annotation of an unknown
            image, or an invalid segmentation. The message names the field.
        KeyError: a required field is missing.
    """
    if not isinstance(doc, dict):
        raise ValueError(f"a COCO file holds a JSON object, not a JSON {type(doc).__name__}")
    images = [_parse_image(i) for i in _records(doc, "images")]
    by_id = {image.id: image for image in images}
    annotations = []
    for a in _records(doc, "annotations"):
        image = by_id.get(whole(a["image_id"], "annotation image_id"))
        if image is None:
            raise ValueError(
                f"annotation {a.get('id')!r} refers to unknown image {a['image_id']!r}"
            )
        rle = _segmentation_to_rle(a["segmentation"], image.height, image.width)
        score = a.get("score")
        annotation_id = whole(a["id"], "annotation id")
        annotations.append(
            CocoAnnotation(
                id=annotation_id,
                image_id=image.id,
                category_id=whole(a["category_id"], "category_id"),
                track_id=whole(a.get("track_id", annotation_id), "track_id"),
                segmentation=rle,
                area=float(rle_area(rle)),
                bbox=rle_bbox(rle),
                score=None if score is None else finite(score, "score", maximum=1.0),
            )
        )
    info = doc.get("info", {})
    return CocoDataset(
        categories=[
            CocoCategory(
                whole(c["id"], "category id"),
                text(c["name"], "category name", max_chars=200),
                text(c.get("supercategory", ""), "supercategory", max_chars=200),
            )
            for c in _records(doc, "categories")
        ],
        videos=[
            CocoVideo(
                whole(v["id"], "video id"),
                text(v["name"], "video name"),
                whole(v["height"], "video height", minimum=1, maximum=MAX_MASK_SIDE),
                whole(v["width"], "video width", minimum=1, maximum=MAX_MASK_SIDE),
                whole(v.get("frame_count", 0), "video frame_count"),
            )
            for v in _records(doc, "videos")
        ],
        images=images,
        annotations=annotations,
        info=dict(info) if isinstance(info, dict) else {},
    )


def _records(doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
    records = doc.get(key, [])
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ValueError(f"{key} must be a list of objects")
    return records


def _parse_image(i: dict[str, Any]) -> CocoImage:
    return CocoImage(
        id=whole(i["id"], "image id"),
        file_name=text(i.get("file_name", ""), "image file_name", max_chars=1000),
        height=whole(i["height"], "image height", minimum=1, maximum=MAX_MASK_SIDE),
        width=whole(i["width"], "image width", minimum=1, maximum=MAX_MASK_SIDE),
        video_id=whole(i.get("video_id", 0), "image video_id"),
        frame_index=whole(i.get("frame_index", i.get("frame_id", 0)), "image frame_index"),
    )


def tracks(dataset: CocoDataset) -> dict[int, CocoTrack]:
    """Group annotations into masklets by ``track_id`` (frames keyed by ``frame_index``)."""
    by_id = {image.id: image for image in dataset.images}
    out: dict[int, CocoTrack] = {}
    for a in dataset.annotations:
        image = by_id[a.image_id]
        track = out.get(a.track_id)
        if track is None:
            track = out[a.track_id] = CocoTrack(a.track_id, a.category_id, image.video_id, {})
        if image.video_id != track.video_id:
            raise ValueError(f"track {a.track_id} spans videos {track.video_id}, {image.video_id}")
        if image.frame_index in track.frames:
            raise ValueError(f"track {a.track_id} has two masks on frame {image.frame_index}")
        track.frames[image.frame_index] = a.segmentation
    return out
