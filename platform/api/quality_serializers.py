"""Quality API shapes: what managers send to switch auto-accept, and what the quality
endpoints answer (documented in the schema)."""

from __future__ import annotations

from rest_framework import serializers

from engine.quality.auto_accept import MAX_THRESHOLD, MIN_THRESHOLD


class AutoAcceptSerializer(serializers.Serializer[dict[str, object]]):
    """``{"auto_accept": bool, "auto_accept_threshold": float (optional)}``."""

    auto_accept = serializers.BooleanField()
    auto_accept_threshold = serializers.FloatField(
        required=False, min_value=MIN_THRESHOLD, max_value=MAX_THRESHOLD
    )


class MaskletQualitySerializer(serializers.Serializer[dict[str, object]]):
    masklet = serializers.IntegerField()
    measured = serializers.CharField(help_text='What was measured: "revision" or "draft"')
    revision = serializers.IntegerField(allow_null=True)
    jitter = serializers.FloatField(
        allow_null=True,
        help_text="Temporal jitter: RMS of the box edges' second difference over frames, "
        "divided by the object's size (0 = steady; see engine.quality.features).",
    )
    marks = serializers.ListField(
        child=serializers.IntegerField(), help_text="Frames most likely to need a correction."
    )
    frame_suspicion = serializers.DictField(
        child=serializers.FloatField(), help_text="Frame index -> suspicion in (0, 1]."
    )
    features = serializers.DictField(child=serializers.FloatField(allow_null=True))
    failure_probability = serializers.FloatField(allow_null=True)
    acceptance_probability = serializers.FloatField(allow_null=True)
    estimator = serializers.IntegerField(allow_null=True)
    auto_accepted = serializers.BooleanField()
    auto_accepted_at = serializers.DateTimeField(allow_null=True)
    auto_accept_threshold = serializers.FloatField(allow_null=True)


class EstimatorSerializer(serializers.Serializer[dict[str, object]]):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    verdicts = serializers.IntegerField()
    accepted = serializers.IntegerField()
    failed = serializers.IntegerField()
    metrics = serializers.DictField(child=serializers.FloatField())


class VerdictCountSerializer(serializers.Serializer[dict[str, object]]):
    accepted = serializers.IntegerField()
    failed = serializers.IntegerField()


class ProjectQualitySerializer(serializers.Serializer[dict[str, object]]):
    project = serializers.IntegerField()
    auto_accept = serializers.BooleanField()
    auto_accept_threshold = serializers.FloatField()
    trained = serializers.BooleanField()
    estimator = EstimatorSerializer(allow_null=True)
    verdicts = VerdictCountSerializer()
    auto_accepted_masklets = serializers.IntegerField()
