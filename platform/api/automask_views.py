"""REST endpoint: a project manager starts an automatic-masklets job for a ready video.

``POST /api/videos/{id}/auto-masklets/`` with an optional JSON body ``{"config": {name: value}}``
(names of :class:`engine.auto_masklets.proposals.AutoMaskConfig` plus ``max_objects``, ``dtype``,
``non_overlap_frames``) answers 202 with the queued job; follow it at ``/api/jobs/{id}/``.
Errors: 400 bad config, 403 not a manager of the project, 404 unknown or invisible video,
409 video not ready, 503 no model configured on the server.
"""

from __future__ import annotations

from typing import Any

from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.serializers import JobSerializer
from api.views import request_user
from engine.accounts import access
from engine.auto_masklets import generate
from engine.errors import InvalidInput


class AutoMaskletRequestSerializer(serializers.Serializer):
    config = serializers.DictField(required=False, help_text="Overrides of the default settings")


class StartAutoMaskletsView(APIView):
    @extend_schema(
        request=AutoMaskletRequestSerializer,
        responses={
            202: JobSerializer,
            400: OpenApiResponse(description="Bad config"),
            409: OpenApiResponse(description="Video not ready"),
            503: OpenApiResponse(description="No model configured"),
        },
    )
    def post(self, request: Request, video_id: int) -> Response:
        user = request_user(request)
        video = access.access_video(user, video_id)
        access.access_project_as_manager(user, video.project_id)
        body: Any = request.data
        if not isinstance(body, dict):
            raise InvalidInput('Send a JSON object, e.g. {"config": {"points_per_side": 16}}')
        unknown = sorted(set(body) - {"config"})
        if unknown:
            raise InvalidInput(f"unknown field(s) {', '.join(unknown)}; expected 'config'")
        overrides = body.get("config") or {}
        if not isinstance(overrides, dict):
            raise InvalidInput("'config' must be an object of settings")
        job = generate.do_start_auto_masklets(video, user, overrides)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


urlpatterns = [
    path(
        "videos/<int:video_id>/auto-masklets/",
        StartAutoMaskletsView.as_view(),
        name="video-auto-masklets",
    ),
]
