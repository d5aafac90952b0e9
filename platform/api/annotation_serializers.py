"""Request and response shapes of the annotation API (``api.annotation_views``).

Serializers check shapes and primitive values: ids and frame indices are ASCII digits (or JSON
integers), numbers are finite JSON numbers (no strings, no booleans), strings are bounded and
free of NUL bytes. Domain rules (inside the frame, RLE size, phase, version) are the engine's.
"""

from __future__ import annotations

import math
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from engine.annotation.edits import MAX_POINTS, FrameEdit, Prompt
from engine.annotation.phases import TOOLS
from engine.annotation.telemetry import MAX_FRAME_VIEWS, MAX_VIEW_AGE, FrameView

MAX_EDITS = 5000
MAX_RLE_CHARS = 1_000_000
MAX_ID = 2**53


@extend_schema_field(OpenApiTypes.INT)
class StrictIdField(serializers.Field):
    """A non-negative integer sent as a JSON integer or ASCII digits ("12"; not "١٢", " 12")."""

    default_error_messages = {"invalid": "Send a non-negative integer (ASCII digits)."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, str) and data.isascii() and data.isdigit() and len(data) <= 16:
            data = int(data)
        if not isinstance(data, int) or not 0 <= data <= MAX_ID:
            self.fail("invalid")
        return int(data)

    def to_representation(self, value: int) -> int:
        return value


@extend_schema_field(OpenApiTypes.NUMBER)
class FiniteNumberField(serializers.Field):
    """A finite JSON number; strings and booleans are refused."""

    default_error_messages = {"invalid": "Send a finite number."}

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        if not math.isfinite(data):
            self.fail("invalid")
        return float(data)

    def to_representation(self, value: float) -> float:
        return value


@extend_schema_field(OpenApiTypes.OBJECT)
class RleField(serializers.Field):
    """COCO RLE ``{"size": [H, W], "counts": str | [int]}``, or null (object absent)."""

    # No braces: DRF formats these messages with str.format.
    default_error_messages = {
        "invalid": 'An RLE is an object with "size": [H, W] and "counts": a string or integers.'
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or set(data) != {"size", "counts"}:
            self.fail("invalid")
        size, counts = data["size"], data["counts"]
        ints = (isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in size)
        if not isinstance(size, list) or len(size) != 2 or not all(ints):
            self.fail("invalid")
        if isinstance(counts, str):
            if len(counts) > MAX_RLE_CHARS or "\x00" in counts or not counts.isascii():
                self.fail("invalid")
        elif isinstance(counts, list):
            if len(counts) > MAX_RLE_CHARS or not all(
                isinstance(c, int) and not isinstance(c, bool) for c in counts
            ):
                self.fail("invalid")
        else:
            self.fail("invalid")
        return {"size": size, "counts": counts}

    def to_representation(self, value: Any) -> Any:
        return value


class PointsBoxSerializer(serializers.Serializer):
    """Clicks and a box in pixels of the frame: what every model prompt carries."""

    points = serializers.ListField(
        child=serializers.ListField(child=FiniteNumberField(), min_length=2, max_length=2),
        max_length=MAX_POINTS,
        default=list,
        help_text="[[x, y], ...] in pixels of the frame",
    )
    labels = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=1),
        max_length=MAX_POINTS,
        default=list,
        help_text="1 positive, 0 negative; one per point",
    )
    box = serializers.ListField(
        child=FiniteNumberField(),
        min_length=4,
        max_length=4,
        allow_null=True,
        default=None,
        help_text="[x0, y0, x1, y1] in pixels, or null",
    )


class PromptSerializer(PointsBoxSerializer):
    mask = serializers.BooleanField(default=False, help_text="the edit's mask is a mask prompt")


class EditSerializer(serializers.Serializer):
    frame_index = StrictIdField()
    tool = serializers.ChoiceField(choices=TOOLS)
    rle = RleField(required=False, default=None)
    prompt = PromptSerializer(required=False, allow_null=True, default=None)

    def to_edit(self, data: dict[str, Any]) -> FrameEdit:
        prompt = data.get("prompt")
        return FrameEdit(
            frame_index=data["frame_index"],
            tool=data["tool"],
            rle=data.get("rle"),
            prompt=None
            if prompt is None
            else Prompt(
                points=tuple((p[0], p[1]) for p in prompt["points"]),
                labels=tuple(prompt["labels"]),
                box=None if prompt["box"] is None else tuple(prompt["box"]),
                mask=prompt["mask"],
            ),
        )


class ProjectRequestSerializer(serializers.Serializer):
    project = StrictIdField()


class LabelSerializer(serializers.Serializer):
    label = serializers.CharField(  # type: ignore[assignment]  # a field, not Field.label
        max_length=200, allow_blank=True, default="", trim_whitespace=True
    )


class WarmFrameSerializer(serializers.Serializer):
    frame_index = StrictIdField(help_text="the frame the page's cursor rests on")
    masklet_id = StrictIdField(
        required=False,
        default=None,
        allow_null=True,
        help_text="the selected object (phase 3): its correction on the frame is prepared too",
    )


class WarmedSerializer(serializers.Serializer):
    sent = serializers.BooleanField(
        help_text="false when no model is configured or warm-ups are off (ANNOTATION_WARM_ON_REST)"
    )


class VersionSerializer(serializers.Serializer):
    base_version = StrictIdField(help_text="the draft version the client last saw")


class RenameSerializer(VersionSerializer):
    label = serializers.CharField(  # type: ignore[assignment]  # a field, not Field.label
        max_length=200,
        allow_blank=True,
        trim_whitespace=True,
        help_text="the object's new label (at most 200 characters, no NUL)",
    )


class EditsRequestSerializer(VersionSerializer):
    edits = serializers.ListField(child=EditSerializer(), min_length=1, max_length=MAX_EDITS)

    def frame_edits(self) -> list[FrameEdit]:
        child = EditSerializer()
        return [child.to_edit(e) for e in self.validated_data["edits"]]


class FrameViewEventSerializer(serializers.Serializer):
    lease = StrictIdField(help_text="the lease (assignment) id the page holds")
    kind = serializers.ChoiceField(choices=["frame_view"])
    frame_index = StrictIdField()
    age_ms = serializers.IntegerField(
        min_value=0,
        max_value=int(MAX_VIEW_AGE.total_seconds() * 1000),
        default=0,
        help_text="how long before this request the page showed the frame",
    )

    def to_internal_value(self, data: Any) -> Any:
        # IntegerField takes "12", 12.0 and true; a count of milliseconds is a JSON integer.
        if isinstance(data, dict) and "age_ms" in data:
            age = data["age_ms"]
            if isinstance(age, bool) or not isinstance(age, int):
                raise serializers.ValidationError({"age_ms": ["Send an integer."]})
        return super().to_internal_value(data)


class EventsRequestSerializer(serializers.Serializer):
    events = serializers.ListField(
        child=FrameViewEventSerializer(), min_length=1, max_length=MAX_FRAME_VIEWS
    )

    def frame_views(self) -> list[FrameView]:
        return [
            FrameView(e["lease"], e["frame_index"], e["age_ms"])
            for e in self.validated_data["events"]
        ]


# --- responses (documentation of the JSON the views build) ----------------------------------


class LeaseSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    state = serializers.CharField()
    user = serializers.CharField(allow_null=True)
    project = serializers.IntegerField()
    video = serializers.IntegerField()
    video_name = serializers.CharField()
    masklet = serializers.IntegerField(allow_null=True)
    flagged_frames = serializers.ListField(child=serializers.IntegerField())
    lease_expires_at = serializers.DateTimeField(allow_null=True)
    tools = serializers.ListField(child=serializers.CharField())


class MaskletSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    video = serializers.IntegerField()
    object_id = serializers.IntegerField()
    label = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.label
    status = serializers.CharField()
    version = serializers.IntegerField()


class DraftSerializer(serializers.Serializer):
    masklet = MaskletSummarySerializer()
    version = serializers.IntegerField()
    revision = serializers.IntegerField(allow_null=True)
    frames = serializers.DictField(
        child=RleField(), help_text='{"<frame>": COCO RLE or null (absent)}'
    )
    frame_sources = serializers.DictField(child=serializers.CharField())
    edited_frames = serializers.ListField(child=serializers.IntegerField())
    prompts = serializers.ListField(child=serializers.DictField())
    can_undo = serializers.BooleanField()
    can_redo = serializers.BooleanField()


class SavedSerializer(serializers.Serializer):
    version = serializers.IntegerField()


class SubmittedSerializer(MaskletSummarySerializer):
    revision = serializers.IntegerField()
    revision_number = serializers.IntegerField()


class StatsRowSerializer(serializers.Serializer):
    video_id = serializers.IntegerField()
    phase = serializers.IntegerField(allow_null=True)
    user_id = serializers.IntegerField(allow_null=True)
    username = serializers.CharField(allow_null=True)
    frame_count = serializers.IntegerField()
    events = serializers.IntegerField()
    active_seconds = serializers.FloatField()
    active_seconds_per_frame = serializers.FloatField(allow_null=True)
    edited_frames = serializers.IntegerField()
    edited_frames_pct = serializers.FloatField(allow_null=True)
    clicks = serializers.IntegerField()
    clicked_frames = serializers.IntegerField()
    clicks_per_clicked_frame = serializers.FloatField(allow_null=True)
    objects = serializers.IntegerField(help_text="objects the annotator's events touched")
    submitted = serializers.IntegerField(help_text="of those, the ones they submitted")
    first_event_at = serializers.DateTimeField(allow_null=True)
    last_event_at = serializers.DateTimeField(allow_null=True)


class RecordedSerializer(serializers.Serializer):
    recorded = serializers.IntegerField()
