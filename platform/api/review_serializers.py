"""What review clients send, parsed into the typed values ``engine.review`` takes.

The REST views and the review pages share these serializers. Only the shape is checked here
(ids and frame keys written with the ASCII digits 0-9, text without NUL characters, masks that are
``{"size": [H, W], "counts": ...}``); the domain rules (frames inside the video, notes on flagged
frames, masks of the video's size) stay in ``engine``. :func:`validated` turns the first problem
into ``engine.errors.InvalidInput``, so bad input answers 400 like every other domain error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from engine.errors import InvalidInput
from engine.masklets.revisions import MAX_REVISION_NOTE_CHARS, FrameMask
from engine.masks.rle import Rle, normalize_rle
from engine.models import Review
from engine.review.verdicts import MAX_COMMENT_CHARS, MAX_NOTE_CHARS

#: An optional minus and at most 18 ASCII digits: ``str.isdigit()`` and ``int()`` also accept
#: "²" or "٣", and a long enough string makes ``int()`` raise or the database overflow.
_DECIMAL = re.compile(r"-?[0-9]{1,18}")
MAX_ID = 2**63 - 1
#: Masks larger than this on either side are no video's (pycocotools sizes are 32-bit).
MAX_MASK_SIDE = 1 << 15


def parse_int(value: Any) -> int:
    """A JSON integer or a string of ASCII digits (with an optional leading ``-``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return int(value)
    raise serializers.ValidationError(
        f"{_shown(value)} is not a whole number written with the digits 0-9"
    )


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@extend_schema_field(OpenApiTypes.INT)
class StrictIntegerField(serializers.Field):
    """An integer given as a JSON number or ASCII digits; bools, floats and other digits refused."""

    def __init__(self, *, min_value: int, max_value: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.min_value, self.max_value = min_value, max_value

    def to_internal_value(self, data: Any) -> int:
        value = parse_int(data)
        if not self.min_value <= value <= self.max_value:
            raise serializers.ValidationError(
                f"{_shown(value)} is out of range ({self.min_value}..{self.max_value})"
            )
        return value

    def to_representation(self, value: int) -> int:
        return value


def id_field(**kwargs: Any) -> StrictIntegerField:
    return StrictIntegerField(min_value=1, max_value=MAX_ID, **kwargs)


def frame_field() -> StrictIntegerField:
    """A frame index; whether it lies inside the video is the engine's check."""
    return StrictIntegerField(min_value=-MAX_ID, max_value=MAX_ID)


def _frame_keyed(data: Any, what: str) -> list[tuple[int, Any]]:
    """``{"<frame>": value}`` as ``(frame, value)`` pairs; two keys of one frame are an error."""
    if not isinstance(data, Mapping):
        raise serializers.ValidationError(f"{what} must map frame indices to values")
    pairs: list[tuple[int, Any]] = []
    seen: set[int] = set()
    for key, value in data.items():
        index = parse_int(key)
        if index in seen:
            raise serializers.ValidationError(f"frame {index} is given twice")
        seen.add(index)
        pairs.append((index, value))
    return pairs


@extend_schema_field(
    {"type": "object", "additionalProperties": {"type": "string"}, "nullable": True}
)
class FrameNotesField(serializers.Field):
    """``{"<frame>": "note"}`` -> ``dict[int, str]``."""

    def to_internal_value(self, data: Any) -> dict[int, str]:
        text = serializers.CharField(max_length=MAX_NOTE_CHARS, allow_blank=True)
        notes: dict[int, str] = {}
        for index, note in _frame_keyed(data, "frame_notes"):
            if not isinstance(note, str):
                raise serializers.ValidationError(f"the note for frame {index} must be text")
            try:
                notes[index] = text.run_validation(note)
            except serializers.ValidationError as exc:
                raise serializers.ValidationError(
                    f"the note for frame {index}: {_first(exc.detail)}"
                ) from None
        return notes

    def to_representation(self, value: dict[int, str]) -> dict[str, str]:
        return {str(k): v for k, v in value.items()}


def parse_client_rle(data: Any) -> Rle:
    """A mask sent by a client as COCO RLE: compressed (``counts`` an ASCII string) or
    uncompressed (``counts`` column-major run lengths starting with background, summing to
    ``H * W``: what the fix page's brush sends)."""
    if not isinstance(data, Mapping) or set(data) != {"size", "counts"}:
        raise serializers.ValidationError("a mask is {'size': [H, W], 'counts': ...}")
    size, counts = data["size"], data["counts"]
    if (
        not isinstance(size, list)
        or len(size) != 2
        or not all(type(v) is int and 0 < v <= MAX_MASK_SIDE for v in size)
    ):
        raise serializers.ValidationError(f"mask size must be [H, W], each 1..{MAX_MASK_SIDE}")
    if isinstance(counts, list):
        if not all(type(c) is int and c >= 0 for c in counts):
            raise serializers.ValidationError("RLE counts must be non-negative integers")
        if sum(counts) != size[0] * size[1]:
            raise serializers.ValidationError(
                f"RLE counts sum to {sum(counts)}, a {size[1]}x{size[0]} mask has "
                f"{size[0] * size[1]} pixels"
            )
    elif not (isinstance(counts, str) and counts.isascii() and counts.isprintable()):
        raise serializers.ValidationError("RLE counts must be an ASCII string or integers")
    try:
        return normalize_rle({"size": size, "counts": counts})
    except (TypeError, ValueError) as exc:
        raise serializers.ValidationError(f"unreadable RLE: {exc}") from None


@extend_schema_field(
    {
        "type": "object",
        "description": "frame index -> COCO RLE {size: [H, W], counts} or null",
        "additionalProperties": {"type": "object", "nullable": True},
    }
)
class BrushFramesField(serializers.Field):
    """``{"<frame>": RLE | None}`` -> ``dict[int, FrameMask]`` painted with the brush
    (None: the object is absent on that frame)."""

    def to_internal_value(self, data: Any) -> dict[int, FrameMask]:
        frames: dict[int, FrameMask] = {}
        for index, raw in _frame_keyed(data, "frames"):
            try:
                rle = None if raw is None else parse_client_rle(raw)
            except serializers.ValidationError as exc:
                raise serializers.ValidationError(f"frame {index}: {_first(exc.detail)}") from None
            frames[index] = FrameMask(rle, "brush")
        return frames

    def to_representation(self, value: dict[int, FrameMask]) -> dict[str, Any]:
        return {str(k): v.rle for k, v in value.items()}


class ProjectChoiceSerializer(serializers.Serializer):
    """``{"project": id}``: the take-next body and the queue's ``?project=`` filter."""

    project = id_field()


class SubmitSerializer(serializers.Serializer):
    base_revision = id_field(required=False, allow_null=True, default=None)


class VerdictSerializer(serializers.Serializer):
    revision = id_field()
    verdict = serializers.ChoiceField(choices=Review.Verdict.choices)
    flagged_frames = serializers.ListField(child=frame_field(), required=False, default=list)
    frame_notes = FrameNotesField(required=False, allow_null=True, default=dict)
    comment = serializers.CharField(
        max_length=MAX_COMMENT_CHARS, allow_blank=True, required=False, default=""
    )
    fix_assignee = id_field(required=False, allow_null=True, default=None)


class FixResubmitSerializer(serializers.Serializer):
    base_revision = id_field()
    frames = BrushFramesField(required=False, default=dict)
    note = serializers.CharField(
        max_length=MAX_REVISION_NOTE_CHARS, allow_blank=True, required=False, default=""
    )


def validated(serializer_class: type[serializers.Serializer], data: Any) -> dict[str, Any]:
    """``data`` parsed by the serializer; its first error as :class:`InvalidInput` (400)."""
    serializer = serializer_class(data=data)
    if not serializer.is_valid():
        raise InvalidInput(_first(serializer.errors))
    return dict(serializer.validated_data)


def _first(detail: Any, where: str = "") -> str:
    """``"field: message"`` (``"field[3]: message"`` inside lists) of the first message in a DRF
    error structure."""
    if isinstance(detail, Mapping):
        key, inner = next(iter(detail.items()))
        if isinstance(key, int):
            return _first(inner, f"{where}[{key}]")
        return _first(inner, where if key == "non_field_errors" else str(key))
    if isinstance(detail, list) and detail:
        return _first(detail[0], where)
    return f"{where}: {detail}" if where else str(detail)
