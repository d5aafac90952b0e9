"""Request and response shapes of the model-serving API (``api.serving_views``): clicks and
boxes, propagation, the serving model. Shapes and primitive values only (finite numbers, ASCII
ids); frame bounds, phase, lease and version are the engine's checks."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from api.annotation_serializers import PointsBoxSerializer, RleField, StrictIdField
from api.serializers import JobSerializer
from engine.annotation.propagation import DIRECTIONS
from engine.annotation.serving import PROMPT_TOOLS, PromptRequest


class PromptRequestSerializer(PointsBoxSerializer):
    """A click or box on one frame; ``points`` is the frame's full click list for the object."""

    base_version = StrictIdField(help_text="the draft version the client last saw")
    frame_index = StrictIdField()
    tool = serializers.ChoiceField(choices=PROMPT_TOOLS)

    def to_request(self, masklet_id: int) -> PromptRequest:
        data: dict[str, Any] = self.validated_data
        box = data["box"]
        return PromptRequest(
            masklet_id=masklet_id,
            base_version=data["base_version"],
            frame_index=data["frame_index"],
            tool=data["tool"],
            points=tuple((p[0], p[1]) for p in data["points"]),
            labels=tuple(data["labels"]),
            box=None if box is None else (box[0], box[1], box[2], box[3]),
        )


class ModelLabelSerializer(serializers.Serializer):
    name = serializers.CharField()
    demo = serializers.BooleanField()


class PromptResponseSerializer(serializers.Serializer):
    version = serializers.IntegerField(help_text="the draft's version after the saved edit")
    frame_index = serializers.IntegerField()
    rle = RleField(help_text="the object's mask on the frame (COCO RLE), null when empty")
    score = serializers.FloatField(
        allow_null=True, help_text="predicted IoU (image tools), null for video tools"
    )
    model = ModelLabelSerializer()


class PropagateRequestSerializer(serializers.Serializer):
    base_version = StrictIdField(help_text="the draft version the client last saw")
    start_frame = StrictIdField()
    direction = serializers.ChoiceField(choices=DIRECTIONS, default="forward")


class PropagateResponseSerializer(serializers.Serializer):
    job = JobSerializer()


class ModelStatusSerializer(serializers.Serializer):
    configured = serializers.BooleanField()
    name = serializers.CharField(allow_null=True)
    config = serializers.CharField(allow_null=True)
    demo = serializers.BooleanField()
    how_to = serializers.CharField(allow_blank=True, help_text="how to get a model when none")


class SinceSerializer(serializers.Serializer):
    since = StrictIdField(required=False, help_text="only frames saved at this version or later")
