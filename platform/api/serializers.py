from __future__ import annotations

from rest_framework import serializers

from engine.models import Job, Project, Video
from model.config import CONFIGS


class ProjectSerializer(serializers.ModelSerializer):
    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "description",
            "phase",
            "annotation_fps",
            "model_config",
            "created_at",
        ]
        read_only_fields = ["id", "created_at"]

    def validate_annotation_fps(self, value: float) -> float:
        if not 0 < value <= 60:
            raise serializers.ValidationError("annotation fps must be in (0, 60]")
        return value

    def validate_model_config(self, value: str) -> str:
        if value not in CONFIGS:
            raise serializers.ValidationError(
                f"unknown model configuration {value!r}; choose one of {', '.join(CONFIGS)}"
            )
        return value


class VideoSerializer(serializers.ModelSerializer):
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = Video
        fields = [
            "id",
            "project",
            "name",
            "status",
            "error",
            "progress",
            "size_bytes",
            "codec",
            "width",
            "height",
            "source_fps",
            "annotation_fps",
            "duration",
            "frame_count",
            "thumbnail_url",
            "created_at",
        ]
        read_only_fields = fields

    def get_thumbnail_url(self, video: Video) -> str | None:
        return f"/media/{video.thumbnail_key}" if video.thumbnail_key else None


class ProjectPhaseSerializer(serializers.Serializer):
    phase = serializers.ChoiceField(choices=Project.Phase.choices)


class VideoUploadSerializer(serializers.Serializer):
    file = serializers.FileField()


class JobSerializer(serializers.ModelSerializer):
    class Meta:
        model = Job
        fields = [
            "id",
            "kind",
            "status",
            "progress",
            "message",
            "attempt",
            "error",
            "result",
            "project",
            "video",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields
