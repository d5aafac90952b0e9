"""Frame sources: where a video session reads its frames from, one frame at a time.

A session never holds a whole video; it asks its `FrameSource` for frame `idx` when it needs the
image features of that frame (and caches only a bounded number of them).
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from PIL import Image

FrameImage = Image.Image | np.ndarray
"""A decoded frame: a PIL image or a uint8 array of shape (H, W, 3), RGB."""

_INT_NAME = re.compile(r"^\d+$")
_JPEG_EXTS = {".jpg", ".jpeg"}
_IMAGE_EXTS = _JPEG_EXTS | {".png"}


class FrameSourceError(ValueError):
    """A frame source is empty, unreadable, or a frame index is out of range."""


@runtime_checkable
class FrameSource(Protocol):
    """A video as a random-access sequence of frames, all of size `width` x `height`."""

    @property
    def width(self) -> int: ...

    @property
    def height(self) -> int: ...

    def __len__(self) -> int: ...

    def read(self, idx: int) -> FrameImage:
        """Decode frame `idx` (0-based). Returns a PIL image or a uint8 (H, W, 3) RGB array."""
        ...


def _check_index(idx: int, num_frames: int) -> None:
    if not isinstance(idx, int | np.integer) or isinstance(idx, bool):
        raise FrameSourceError(f"frame index must be an int, got {type(idx).__name__}")
    if not 0 <= idx < num_frames:
        raise FrameSourceError(f"frame index {idx} out of range [0, {num_frames})")


def list_frame_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The frame files of `folder` in video order.

    Official layout first: files named `<int>.jpg` (or `.jpeg`), sorted by that integer. Otherwise
    every `*.jpg`, `*.jpeg` and `*.png`, sorted by name.
    """
    root = Path(folder)
    if not root.is_dir():
        raise FrameSourceError(f"frame folder does not exist: {root}")
    files = [p for p in root.iterdir() if p.is_file() and p.suffix.lower() in _IMAGE_EXTS]
    numbered = [p for p in files if p.suffix.lower() in _JPEG_EXTS and _INT_NAME.match(p.stem)]
    if numbered and len(numbered) == len([p for p in files if p.suffix.lower() in _JPEG_EXTS]):
        return sorted(numbered, key=lambda p: int(p.stem))
    if not files:
        raise FrameSourceError(f"no .jpg/.jpeg/.png frames found in {root}")
    return sorted(files, key=lambda p: p.name)


class _SizedSource:
    """Shared by the frame sources: the video size, fixed at construction, and its check."""

    _width: int
    _height: int

    @property
    def width(self) -> int:
        return self._width

    @property
    def height(self) -> int:
        return self._height

    def _check_size(self, idx: int, frame: Image.Image, label: str = "") -> Image.Image:
        if frame.size != (self._width, self._height):
            raise FrameSourceError(
                f"frame {idx}{label} is {frame.size[0]}x{frame.size[1]}, "
                f"expected {self._width}x{self._height}"
            )
        return frame


class FolderFrameSource(_SizedSource):
    """Frames stored as image files in one folder (see `list_frame_files` for the order).

    The size of the video is the size of its first frame; frames of another size raise on read.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.paths: list[Path] = list_frame_files(self.folder)
        with Image.open(self.paths[0]) as first:
            self._width, self._height = first.size

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, idx: int) -> Image.Image:
        _check_index(idx, len(self.paths))
        with Image.open(self.paths[idx]) as img:
            frame = img.convert("RGB")
        return self._check_size(idx, frame, f" ({self.paths[idx].name})")


JpegFolderSource = FolderFrameSource
"""Alias: the official predictor's input is a folder of `<int>.jpg` files."""


class CallableFrameSource(_SizedSource):
    """Frames fetched as encoded image bytes (JPEG/PNG) by a callable, e.g. from object storage."""

    def __init__(
        self,
        num_frames: int,
        width: int,
        height: int,
        read_bytes: Callable[[int], bytes],
    ) -> None:
        if num_frames <= 0:
            raise FrameSourceError(f"num_frames must be positive, got {num_frames}")
        if width <= 0 or height <= 0:
            raise FrameSourceError(f"frame size must be positive, got {width}x{height}")
        self._num_frames = num_frames
        self._width = width
        self._height = height
        self._read_bytes = read_bytes

    def __len__(self) -> int:
        return self._num_frames

    def read(self, idx: int) -> Image.Image:
        _check_index(idx, self._num_frames)
        data = self._read_bytes(idx)
        try:
            with Image.open(io.BytesIO(data)) as img:
                frame = img.convert("RGB")
        except Exception as exc:  # PIL raises several types for corrupt data
            raise FrameSourceError(f"frame {idx} could not be decoded: {exc}") from exc
        return self._check_size(idx, frame)


class ArrayFrameSource(_SizedSource):
    """Frames given as a sequence of uint8 (H, W, 3) arrays or PIL images (tests, small clips).

    The sequence may be lazy (any object with `__len__` and `__getitem__`).
    """

    def __init__(self, frames: Sequence[FrameImage]) -> None:
        if len(frames) == 0:
            raise FrameSourceError("no frames given")
        self._frames = frames
        first = frames[0]
        if isinstance(first, Image.Image):
            self._width, self._height = first.size
        else:
            self._height, self._width = int(first.shape[0]), int(first.shape[1])

    def __len__(self) -> int:
        return len(self._frames)

    def read(self, idx: int) -> FrameImage:
        _check_index(idx, len(self._frames))
        return self._frames[idx]
