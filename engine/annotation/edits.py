"""One frame edit of a draft, as a client sends it, and the checks it must pass.

An edit names its tool (:mod:`engine.annotation.phases`), the frame, the frame's resulting mask
(COCO RLE, or None when the object is absent) and, for model tools, the prompt that produced it,
so a model session can be rebuilt by replaying the saved prompts:

- ``image_click`` / ``video_click``: ``points`` ``[[x, y], ...]`` in pixels with ``labels``
  (1 positive, 0 negative), optionally with the frame's ``box``; the full prompt of the frame
  at that moment, one click more than the frame's previous click edit.
- ``image_box`` / ``video_box``: ``box`` ``[x0, y0, x1, y1]`` in pixels, optionally points.
- ``propagate``: no prompt for a propagated frame's mask; ``{"mask": true}`` for the mask
  prompt that propagation starts from (its ``rle`` is the prompt).
- ``brush`` / ``eraser``: no prompt; the mask after the stroke.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from engine.errors import InvalidInput
from engine.masks.rle import InvalidRle, Rle, normalize_rle
from engine.models import DraftEdit, Video

from . import phases

MAX_POINTS = 64
#: The draft source recorded for each tool's edits (prompt kinds are told apart in ``prompt``).
SOURCE_OF_TOOL = {
    phases.IMAGE_CLICK: DraftEdit.Source.CLICK,
    phases.VIDEO_CLICK: DraftEdit.Source.CLICK,
    phases.IMAGE_BOX: DraftEdit.Source.BOX,
    phases.VIDEO_BOX: DraftEdit.Source.BOX,
    phases.PROPAGATE: DraftEdit.Source.PROPAGATED,
    phases.BRUSH: DraftEdit.Source.BRUSH,
    phases.ERASER: DraftEdit.Source.ERASER,
}
#: The revision's frame source (``engine.masklets.revisions.FRAME_SOURCES``) of each draft source.
FRAME_SOURCE = {
    DraftEdit.Source.CLICK: "click",
    DraftEdit.Source.BOX: "click",
    DraftEdit.Source.MASK: "click",
    DraftEdit.Source.PROPAGATED: "propagated",
    DraftEdit.Source.BRUSH: "brush",
    DraftEdit.Source.ERASER: "brush",
}
#: Sources of frames the annotator edited by hand (the revision's ``edited_frames``).
EDITING_SOURCES = frozenset(
    {DraftEdit.Source.CLICK, DraftEdit.Source.BOX, DraftEdit.Source.BRUSH, DraftEdit.Source.ERASER}
)


class InvalidEdit(InvalidInput):
    """An edit that cannot belong to this video: outside the frame, NaN, bad RLE... (400)."""


@dataclass(frozen=True)
class Prompt:
    """A model prompt in pixel coordinates of the frame; see the module docstring."""

    points: tuple[tuple[float, float], ...] = ()
    labels: tuple[int, ...] = ()
    box: tuple[float, float, float, float] | None = None
    mask: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "points": [list(p) for p in self.points],
            "labels": list(self.labels),
            "box": None if self.box is None else list(self.box),
            "mask": self.mask,
        }


@dataclass(frozen=True)
class FrameEdit:
    frame_index: int
    tool: str
    rle: Rle | dict[str, Any] | None
    prompt: Prompt | None = None

    @property
    def source(self) -> str:
        if self.prompt is not None and self.prompt.mask:
            return DraftEdit.Source.MASK
        return SOURCE_OF_TOOL[self.tool]


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEdit(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise InvalidEdit(f"{what} must be finite, got {value!r}")
    return float(value)


def _inside(x: float, y: float, video: Video, what: str) -> None:
    width, height = video.width or 0, video.height or 0
    if not (0 <= x <= width and 0 <= y <= height):
        raise InvalidEdit(f"{what} ({x:g}, {y:g}) is outside the {width}x{height} frame")


def _check_prompt(prompt: Prompt, video: Video) -> None:
    if len(prompt.points) > MAX_POINTS:
        raise InvalidEdit(f"a prompt has at most {MAX_POINTS} points")
    if len(prompt.labels) != len(prompt.points):
        raise InvalidEdit("a prompt needs exactly one label per point")
    for i, point in enumerate(prompt.points):
        if not isinstance(point, Sequence) or isinstance(point, str) or len(point) != 2:
            raise InvalidEdit(f"point {i} must be [x, y]")
        x, y = (_number(v, f"point {i}") for v in point)
        _inside(x, y, video, f"point {i}")
    for label in prompt.labels:
        if isinstance(label, bool) or label not in (0, 1):
            raise InvalidEdit(f"labels are 1 (positive) or 0 (negative), got {label!r}")
    if prompt.box is not None:
        if not isinstance(prompt.box, Sequence) or len(prompt.box) != 4:
            raise InvalidEdit("a box is [x0, y0, x1, y1]")
        x0, y0, x1, y1 = (_number(v, "box") for v in prompt.box)
        _inside(x0, y0, video, "box corner")
        _inside(x1, y1, video, "box corner")
        if not (x0 < x1 and y0 < y1):
            raise InvalidEdit("a box is [x0, y0, x1, y1] with x0 < x1 and y0 < y1")


def _check_tool_prompt(edit: FrameEdit) -> None:
    prompt = edit.prompt
    if edit.tool in (phases.IMAGE_CLICK, phases.VIDEO_CLICK):
        if prompt is None or not prompt.points or prompt.mask:
            raise InvalidEdit(f"a {edit.tool} edit needs a prompt with at least one point")
    elif edit.tool in (phases.IMAGE_BOX, phases.VIDEO_BOX):
        if prompt is None or prompt.box is None or prompt.mask:
            raise InvalidEdit(f"a {edit.tool} edit needs a prompt with a box")
    elif edit.tool == phases.PROPAGATE:
        if prompt is not None and (prompt.points or prompt.box is not None or not prompt.mask):
            raise InvalidEdit(
                "propagate takes mask prompts only ({'mask': true}); clicks and boxes are "
                "video_click and video_box edits"
            )
        if prompt is not None and edit.rle is None:
            raise InvalidEdit("a mask prompt needs a mask")
    elif prompt is not None:
        raise InvalidEdit(f"a {edit.tool} edit carries no prompt")


def check_rle(rle: Mapping[str, Any], video: Video) -> Rle:
    """A client's RLE as the canonical compressed form, sized as the video's frames.

    :func:`engine.masks.rle.normalize_rle` checks the runs (it raises ``InvalidRle``, a 400).
    """
    if not isinstance(rle, Mapping):
        raise InvalidEdit("an RLE is {'size': [H, W], 'counts': str | [int]}")
    try:
        canonical = normalize_rle(dict(rle))
    except InvalidRle as exc:
        raise InvalidEdit(str(exc)) from None
    height, width = canonical["size"]
    if (height, width) != (video.height, video.width):
        raise InvalidEdit(f"mask is {width}x{height}, the video is {video.width}x{video.height}")
    return canonical


def check_edits(video: Video, edits: Sequence[FrameEdit]) -> list[FrameEdit]:
    """Validate every edit against the video; returns them with canonical RLEs. Raises
    :class:`InvalidEdit` on the first problem (the tool's phase is checked separately)."""
    if not edits:
        raise InvalidEdit("send at least one edit")
    checked: list[FrameEdit] = []
    for n, edit in enumerate(edits):
        if edit.tool not in phases.TOOLS:
            raise InvalidEdit(f"edit {n}: unknown tool {edit.tool!r}")
        index = edit.frame_index
        if isinstance(index, bool) or not isinstance(index, int):
            raise InvalidEdit(f"edit {n}: the frame index must be an integer")
        if not 0 <= index < video.frame_count:
            raise InvalidEdit(
                f"edit {n}: frame {index} is outside the video (frames 0..{video.frame_count - 1})"
            )
        try:
            _check_tool_prompt(edit)
            if edit.prompt is not None:
                _check_prompt(edit.prompt, video)
            rle = None if edit.rle is None else check_rle(edit.rle, video)
        except InvalidEdit as exc:
            raise InvalidEdit(f"edit {n} (frame {index}): {exc}") from None
        checked.append(FrameEdit(index, edit.tool, rle, edit.prompt))
    return checked
