"""DAVIS / YouTube-VOS folders of JPEG frames and palette-PNG annotations.

Layout: ``JPEGImages/<video>/<%05d>.jpg`` and ``Annotations/<video>/<%05d>.png``.

An annotation PNG is an indexed-palette ("P" mode) image of one frame: pixel value 0 is
background and value k is object k (1..255), coloured with the DAVIS palette (the PASCAL VOC
colour map). Frame files are named by the frame index, so a YouTube-VOS-like export that annotates
every 4th frame has gaps in the PNG names; a frame without a PNG is "not annotated", while a PNG
without object k means "object k absent on that frame".

One pixel holds one object, so overlapping masks must be resolved. ``OverlapRule`` names the rule;
the default, ``HIGHER_ID_WINS``, paints objects in increasing id so the higher id keeps a contested
pixel. ``SMALLER_ON_TOP`` paints larger masks first, so small objects stay visible. The writer
reports how many pixels were lost to overlaps.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from engine.masks.rle import Rle, decode_rle, encode_rle

MaskLike = Rle | dict[str, Any] | np.ndarray | None
BytesSink = Callable[[str, bytes], None]
"""Receives ``(relative path with "/" separators, file bytes)``; e.g. a folder or object storage."""

MAX_OBJECT_ID = 255
_FRAME_NAME = re.compile(r"^(\d+)\.(png|jpg|jpeg)$", re.IGNORECASE)


def _voc_palette() -> bytes:
    """The 256-colour PASCAL VOC / DAVIS palette as 768 bytes (R, G, B per index).

    Index bits are spread over the colour channels from the most significant bit down:
    bit 0 -> red, bit 1 -> green, bit 2 -> blue, then the next three bits one level lower.
    """
    out = bytearray()
    for index in range(256):
        r = g = b = 0
        value = index
        for shift in range(7, -1, -1):
            r |= ((value >> 0) & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        out += bytes((r, g, b))
    return bytes(out)


DAVIS_PALETTE = _voc_palette()


class OverlapRule(StrEnum):
    """Which object keeps a pixel claimed by several masks."""

    HIGHER_ID_WINS = "higher_id_wins"
    SMALLER_ON_TOP = "smaller_on_top"


@dataclass(frozen=True)
class DavisLayout:
    """Folder and file names; the defaults are DAVIS 2017's."""

    images_dir: str = "JPEGImages"
    annotations_dir: str = "Annotations"
    digits: int = 5

    def frame_stem(self, index: int) -> str:
        return f"{index:0{self.digits}d}"


def _to_mask(mask: MaskLike, hw: tuple[int, int]) -> np.ndarray | None:
    if mask is None:
        return None
    array = mask if isinstance(mask, np.ndarray) else decode_rle(mask)
    if array.shape != hw:
        raise ValueError(f"mask shape {array.shape} != frame [H, W] {hw}")
    return array.astype(bool, copy=False)


def compose_index_mask(
    masks: Mapping[int, MaskLike],
    frame_hw: tuple[int, int],
    rule: OverlapRule = OverlapRule.HIGHER_ID_WINS,
) -> tuple[np.ndarray, int]:
    """Paint per-object masks into one index image.

    Args:
        masks: object id (1..255) -> ``[H, W]`` bool mask or RLE (``None`` = absent).
        frame_hw: ``(H, W)``.
        rule: overlap rule (see module docstring).

    Returns:
        ``([H, W] uint8 index image, number of foreground pixels claimed by more than one object)``.
    """
    decoded: list[tuple[int, np.ndarray]] = []
    for obj_id, mask in masks.items():
        if not 1 <= int(obj_id) <= MAX_OBJECT_ID:
            raise ValueError(f"object id {obj_id} outside 1..{MAX_OBJECT_ID}")
        array = _to_mask(mask, frame_hw)
        if array is not None:
            decoded.append((int(obj_id), array))
    if rule == OverlapRule.HIGHER_ID_WINS:
        decoded.sort(key=lambda item: item[0])
    else:
        decoded.sort(key=lambda item: (-int(np.count_nonzero(item[1])), item[0]))
    index = np.zeros(frame_hw, dtype=np.uint8)
    claims = np.zeros(frame_hw, dtype=np.uint8)
    for obj_id, array in decoded:
        index[array] = obj_id
        claims[array] = np.minimum(claims[array], 254) + 1
    return index, int(np.count_nonzero(claims > 1))


def split_index_mask(index: np.ndarray) -> dict[int, np.ndarray]:
    """Per-object ``[H, W]`` bool masks of an index image (background 0 skipped)."""
    return {int(k): index == k for k in np.unique(index) if k != 0}


def encode_index_png(index: np.ndarray) -> bytes:
    """``[H, W]`` uint8 index image -> palette PNG bytes."""
    if index.dtype != np.uint8 or index.ndim != 2:
        raise ValueError("index image must be 2-D uint8")
    height, width = index.shape
    image = Image.frombytes("P", (width, height), np.ascontiguousarray(index).tobytes())
    image.putpalette(DAVIS_PALETTE)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def decode_index_png(data: bytes | Path) -> np.ndarray:
    """Annotation PNG -> ``[H, W]`` uint8 object indices.

    Palette PNGs give their indices directly; greyscale PNGs their values; RGB PNGs are mapped
    back through the DAVIS palette (an unknown colour is an error).
    """
    with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
        if image.mode in ("P", "L"):
            return np.array(image, dtype=np.uint8)
        rgb = np.array(image.convert("RGB"), dtype=np.uint32)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    palette = np.frombuffer(DAVIS_PALETTE, dtype=np.uint8).reshape(256, 3).astype(np.uint32)
    lookup = {int((r << 16) | (g << 8) | b): i for i, (r, g, b) in enumerate(palette)}
    colours = np.unique(packed)
    unknown = [int(c) for c in colours if int(c) not in lookup]
    if unknown:
        raise ValueError(f"annotation colours not in the DAVIS palette: {unknown[:5]}")
    out = np.zeros(packed.shape, dtype=np.uint8)
    for colour in colours:
        out[packed == colour] = lookup[int(colour)]
    return out


def directory_sink(root: Path) -> BytesSink:
    """A ``BytesSink`` writing below ``root`` (parent folders created on demand)."""

    def write(relative: str, data: bytes) -> None:
        path = root.joinpath(*relative.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    return write


@dataclass(frozen=True)
class DavisWriteReport:
    frames_written: int
    annotations_written: int
    overlap_pixels: int


def write_davis_video(
    sink: BytesSink,
    video_name: str,
    frames: Iterable[tuple[int, bytes]],
    masks_for_frame: Callable[[int], Mapping[int, MaskLike] | None],
    frame_hw: tuple[int, int],
    *,
    rule: OverlapRule = OverlapRule.HIGHER_ID_WINS,
    layout: DavisLayout | None = None,
) -> DavisWriteReport:
    """Write one video, one frame at a time.

    Args:
        sink: where files go (see ``directory_sink``).
        video_name: folder name under ``JPEGImages/`` and ``Annotations/``.
        frames: ``(frame index, JPEG bytes)``; only frames yielded here are written.
        masks_for_frame: frame index -> {object id (1..255): mask or RLE}; ``None`` means the frame
            is not annotated (no PNG), an empty mapping an annotated frame with no object.
        frame_hw: ``(H, W)`` of the annotations.
    """
    layout = layout or DavisLayout()
    n_frames = n_annotations = overlap = 0
    for index, jpeg in frames:
        stem = layout.frame_stem(index)
        sink(f"{layout.images_dir}/{video_name}/{stem}.jpg", jpeg)
        n_frames += 1
        masks = masks_for_frame(index)
        if masks is None:
            continue
        index_image, lost = compose_index_mask(masks, frame_hw, rule)
        sink(f"{layout.annotations_dir}/{video_name}/{stem}.png", encode_index_png(index_image))
        n_annotations += 1
        overlap += lost
    return DavisWriteReport(n_frames, n_annotations, overlap)


def _numbered_files(folder: Path, suffixes: tuple[str, ...]) -> list[tuple[int, Path]]:
    found = []
    for path in folder.iterdir():
        match = _FRAME_NAME.match(path.name)
        if match and path.suffix.lower() in suffixes:
            found.append((int(match.group(1)), path))
    return sorted(found)


def list_davis_videos(root: Path, layout: DavisLayout | None = None) -> list[str]:
    """Names of the videos that have an annotation folder."""
    layout = layout or DavisLayout()
    folder = root / layout.annotations_dir
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def iter_davis_frames(
    root: Path, video_name: str, layout: DavisLayout | None = None
) -> Iterator[tuple[int, Path]]:
    """``(frame index, JPEG path)`` in index order."""
    layout = layout or DavisLayout()
    yield from _numbered_files(root / layout.images_dir / video_name, (".jpg", ".jpeg"))


def iter_davis_annotations(
    root: Path, video_name: str, layout: DavisLayout | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """``(frame index, [H, W] uint8 index image)`` for each annotated frame, in index order."""
    layout = layout or DavisLayout()
    for index, path in _numbered_files(root / layout.annotations_dir / video_name, (".png",)):
        yield index, decode_index_png(path)


@dataclass
class DavisVideoMasks:
    """Per-object per-frame masks of one video, as RLEs.

    ``masklets[obj_id][frame_index]`` exists for every annotated frame and every object seen in
    the video (an empty RLE where the object is absent on that frame).
    """

    video_name: str
    frame_hw: tuple[int, int]
    frame_indices: list[int]
    masklets: dict[int, dict[int, Rle]]

    def mask(self, obj_id: int, frame_index: int) -> np.ndarray:
        return decode_rle(self.masklets[obj_id][frame_index])


def read_davis_video(
    root: Path, video_name: str, layout: DavisLayout | None = None
) -> DavisVideoMasks:
    """Read a video's annotation PNGs into per-object per-frame RLEs (one PNG decoded at a time)."""
    per_frame: list[tuple[int, dict[int, Rle]]] = []
    objects: set[int] = set()
    frame_hw: tuple[int, int] | None = None
    for index, image in iter_davis_annotations(root, video_name, layout):
        if frame_hw is None:
            frame_hw = (int(image.shape[0]), int(image.shape[1]))
        elif image.shape != frame_hw:
            raise ValueError(f"frame {index} has shape {image.shape}, expected {frame_hw}")
        rles = {obj: encode_rle(m) for obj, m in split_index_mask(image).items()}
        objects.update(rles)
        per_frame.append((index, rles))
    if frame_hw is None:
        raise ValueError(f"no annotation PNGs for video {video_name!r}")
    empty = encode_rle(np.zeros(frame_hw, dtype=bool))
    masklets: dict[int, dict[int, Rle]] = {obj: {} for obj in sorted(objects)}
    for index, rles in per_frame:
        for obj in masklets:
            masklets[obj][index] = rles.get(obj, empty)
    return DavisVideoMasks(
        video_name=video_name,
        frame_hw=frame_hw,
        frame_indices=[index for index, _ in per_frame],
        masklets=masklets,
    )


def read_per_object_png_video(
    root: Path, video_name: str, annotations_dir: str = "Annotations_6fps"
) -> DavisVideoMasks:
    """Read SA-V's val/test layout: ``<annotations_dir>/<video>/<obj:03d>/<%05d>.png``.

    One binary PNG per object per annotated frame (pixel > 0 is foreground); objects may overlap,
    which this layout, unlike the indexed one, can express. Object ids are the folder numbers.
    """
    video_dir = root / annotations_dir / video_name
    object_dirs = sorted(
        (int(p.name), p) for p in video_dir.iterdir() if p.is_dir() and p.name.isdigit()
    )
    if not object_dirs:
        raise ValueError(f"no object folders under {video_dir}")
    masklets: dict[int, dict[int, Rle]] = {}
    frame_hw: tuple[int, int] | None = None
    frames: set[int] = set()
    for obj_id, folder in object_dirs:
        masklets[obj_id] = {}
        for index, path in _numbered_files(folder, (".png",)):
            with Image.open(path) as image:
                pixels = np.asarray(image)
            # An RGB rendering counts any non-black pixel as foreground.
            mask = (pixels.max(axis=2) if pixels.ndim == 3 else pixels) > 0
            if frame_hw is None:
                frame_hw = (int(mask.shape[0]), int(mask.shape[1]))
            elif mask.shape != frame_hw:
                raise ValueError(f"{path} has shape {mask.shape}, expected {frame_hw}")
            masklets[obj_id][index] = encode_rle(mask)
            frames.add(index)
    assert frame_hw is not None
    return DavisVideoMasks(video_name, frame_hw, sorted(frames), masklets)
