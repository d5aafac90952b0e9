"""Serializers of the model-version and round endpoints (shapes for the OpenAPI schema)."""

from __future__ import annotations

from rest_framework import serializers

from model.config import CONFIGS


class ScoresSerializer(serializers.Serializer):
    jf_1 = serializers.FloatField(required=False)
    jf_3 = serializers.FloatField(required=False)
    jf_5 = serializers.FloatField(required=False)
    clicks_to_075 = serializers.FloatField(required=False)
    jf_mask = serializers.FloatField(required=False)


class ModelVersionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    config = serializers.CharField()
    status = serializers.ChoiceField(choices=["candidate", "promoted", "retired"])
    sha256 = serializers.CharField()
    checkpoint_key = serializers.CharField()
    parent = serializers.IntegerField(allow_null=True)  # type: ignore[assignment]
    lineage = serializers.ListField(
        child=serializers.IntegerField(), help_text="ancestor ids, parent first"
    )
    metrics = serializers.DictField()
    training_snapshot = serializers.DictField()
    demo = serializers.BooleanField(help_text="the offline demo model trained on procedural videos")
    created_at = serializers.DateTimeField(allow_null=True)


class ServingSerializer(serializers.Serializer):
    configured = serializers.BooleanField()
    name = serializers.CharField(allow_null=True)
    config = serializers.CharField(allow_null=True)
    demo = serializers.BooleanField()
    how_to = serializers.CharField(allow_blank=True)


class ModelListSerializer(serializers.Serializer):
    serving = ServingSerializer()
    rollback_to = serializers.IntegerField(
        allow_null=True, help_text="the version a rollback would re-promote"
    )
    versions = ModelVersionSerializer(many=True)


class RegisterUploadSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    config = serializers.ChoiceField(choices=sorted(CONFIGS))
    file = serializers.FileField(
        required=False, help_text='a checkpoint {"model": state_dict} (.pt)'
    )
    storage_key = serializers.CharField(
        required=False, max_length=1024, help_text="a checkpoint already in object storage"
    )
    parent = serializers.IntegerField(required=False, min_value=1)  # type: ignore[assignment]

    def validate(self, attrs: dict) -> dict:
        if ("file" in attrs) == ("storage_key" in attrs):
            raise serializers.ValidationError("send exactly one of 'file' and 'storage_key'")
        return attrs


class ActionSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)


class RoundSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    project_id = serializers.IntegerField()
    job_id = serializers.IntegerField(allow_null=True)
    status = serializers.CharField()
    phase = serializers.IntegerField()
    candidate_version_id = serializers.IntegerField(allow_null=True)
    promoted_version_id = serializers.IntegerField(allow_null=True)
    promoted = serializers.BooleanField()
    reason = serializers.CharField(allow_blank=True)
    metrics = serializers.DictField(child=ScoresSerializer())
    paired = serializers.DictField()
    loss_curve = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField()), help_text="[[step, loss], ...]"
    )
    steps = serializers.IntegerField(allow_null=True)
    seconds = serializers.FloatField(allow_null=True)
    error = serializers.CharField(allow_blank=True)
    started_at = serializers.DateTimeField(allow_null=True)
    ended_at = serializers.DateTimeField(allow_null=True)


class RoundSettingsSerializer(serializers.Serializer):
    enabled = serializers.BooleanField(required=False)
    min_new_masklets = serializers.IntegerField(required=False, min_value=0)
    interval_hours = serializers.FloatField(required=False, min_value=0.0)
    steps = serializers.IntegerField(required=False, min_value=1)


class ActiveRoundSerializer(serializers.Serializer):
    job_id = serializers.IntegerField()
    status = serializers.CharField()
    progress = serializers.FloatField()
    message = serializers.CharField(allow_blank=True)
    round = RoundSerializer(allow_null=True)


class RoundListSerializer(serializers.Serializer):
    active = ActiveRoundSerializer(allow_null=True)
    settings = RoundSettingsSerializer()
    new_verified_masklets = serializers.IntegerField()
    rounds = RoundSerializer(many=True)
    plots = serializers.ListField(child=serializers.CharField())


class StartRoundSerializer(serializers.Serializer):
    steps = serializers.IntegerField(required=False, min_value=1, max_value=1_000_000)
